// The admin API's routes for what a group does by itself: scaling policies,
// scheduled actions, lifecycle hooks and notification targets
// (docs/api.md). Each kind has the same four routes under the group:
//
//   GET    /v1/groups/{group}/{kind}           list
//   GET    /v1/groups/{group}/{kind}/{name}    show
//   PUT    /v1/groups/{group}/{kind}/{name}    create (201) or replace (200)
//   DELETE /v1/groups/{group}/{kind}/{name}    delete
//
// A body is parsed and validated whole, written to the store, and only then
// taken into memory, so a refused request leaves no trace anywhere.
#include <algorithm>
#include <optional>
#include <tuple>

#include <spdlog/spdlog.h>

#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/server/route_helpers.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

using nlohmann::json;

namespace {

// The body names the spec by the URL; a `name` in the body must agree.
tl::expected<json, ApiResponse> named_body(const ApiRequest& request) {
  const json& body = body_or_empty(request);
  if (!body.is_object()) return tl::make_unexpected(api_error(400, "the body must be a JSON object"));
  json named = body;
  const std::string& name = request.path_params.at(1);
  if (named.contains("name") && named["name"] != name) {
    return tl::make_unexpected(api_error(400, "name: the body says " + named["name"].dump() +
                                                  " but the URL says '" + name + "'", "name"));
  }
  named["name"] = name;
  return named;
}

// A warning for a policy on an agent metric that is not built in and that
// no instance of its group reports (a typo such as "cpuu", or an application
// that does not report it yet); nullopt when some instance reports it.
std::optional<std::string> unreported_metric_warning(const ScalingPolicy& policy, const MetricWindows& windows) {
  const auto [group, metric, query] = std::visit(
      [](const auto& p) { return std::tuple<std::string, std::string, std::string>{p.group, p.metric, p.query}; },
      policy);
  if (metric_source(metric, query) != MetricSource::Agent || is_agent_builtin_metric(metric)) return std::nullopt;
  const auto reported = windows.metrics_of(group);
  if (std::find(reported.begin(), reported.end(), metric) != reported.end()) return std::nullopt;
  return "no instance of " + group + " reports the metric '" + metric +
         "' yet: the policy has no data (and never acts) until an application reports it. Every agent reports "
         "cpu, memory, load1, network_in, network_out and tcp_established; the load balancer "
         "requests_per_instance, response_time_ms, queue, http_5xx_rate and sessions_per_instance";
}

}  // namespace

json Server::spec_json(const ScheduledAction& action) const {
  json body = to_json(action);
  body["last_fired_ms"] = action.last_fired_ms ? json(*action.last_fired_ms) : json(nullptr);
  const auto next = next_schedule_fire(action, now_ms());
  body["next_fire_ms"] = next ? json(*next) : json(nullptr);
  return body;
}

void Server::register_spec_routes() {
  HttpApi& api = *m_api;
  const auto group_exists = [this](const ApiRequest& request) {
    return m_fleet->group(request.path_params.at(0)) != nullptr;
  };
  const auto no_group = [](const ApiRequest& request) {
    return api_error(404, "no group '" + request.path_params.at(0) + "'");
  };
  const std::string base = R"(/v1/groups/([^/]+)/)";
  const std::string one = R"(/([^/]+))";

  // ---- scaling policies ----
  api.route("GET", base + "policies", [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    json list = json::array();
    for (const auto& [key, policy] : m_specs.policies) {
      if (key.first != request.path_params.at(0)) continue;
      json entry = to_json(policy);
      // Whether the policy's condition held at its latest evaluation (alarm
      // policies; target tracking and query policies are never "in alarm").
      entry["in_alarm"] = m_autoscaler.in_alarm(key.first, key.second);
      list.push_back(std::move(entry));
    }
    return respond(200, json{{"policies", list}});
  });
  api.route("GET", base + "policies" + one, [=, this](const ApiRequest& request) {
    auto it = m_specs.policies.find({request.path_params.at(0), request.path_params.at(1)});
    if (it == m_specs.policies.end()) return api_error(404, "no policy '" + request.path_params.at(1) + "'");
    json entry = to_json(it->second);
    entry["in_alarm"] = m_autoscaler.in_alarm(it->first.first, it->first.second);
    return respond(200, entry);
  });
  api.route("PUT", base + "policies" + one, [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    auto body = named_body(request);
    if (!body) return body.error();
    auto policy = policy_from_json(*body, request.path_params.at(0));
    if (!policy) return from_json_error(policy.error());
    if (auto check = check_policy_metric(*policy); !check) return api_error(400, check.error().message, check.error().field);
    if (auto stored = m_store->put_policy(*policy, now_ms()); !stored) return from_store_error(stored.error());
    const bool existed = m_specs.policies.count({request.path_params.at(0), request.path_params.at(1)}) != 0;
    put_policy_in_memory(*policy);
    json answer = to_json(*policy);
    if (auto warning = unreported_metric_warning(*policy, m_metrics)) answer["warnings"] = json::array({*warning});
    return respond(existed ? 200 : 201, answer);
  });
  api.route("DELETE", base + "policies" + one, [=, this](const ApiRequest& request) {
    const std::string& group = request.path_params.at(0);
    const std::string& name = request.path_params.at(1);
    if (auto deleted = m_store->delete_spec(store::SpecKind::Policy, group, name); !deleted) {
      return from_store_error(deleted.error());
    }
    remove_policy_in_memory(group, name);
    return respond(200, json{{"message", "deleted policy " + name}});
  });
  api.route("POST", base + "policies" + one + "/execute", [=, this](const ApiRequest& request) {
    const json& body = body_or_empty(request);
    if (!body.is_object()) return api_error(400, "the body must be a JSON object");
    if (body.contains("honour_cooldown") && !body["honour_cooldown"].is_boolean()) {
      return api_error(400, "honour_cooldown: must be true or false", "honour_cooldown");
    }
    const bool honour = body.value("honour_cooldown", true);
    auto result = execute_policy_now(request.path_params.at(0), request.path_params.at(1), honour);
    if (!result) return result.error();
    return respond(200, *result);
  });

  // ---- scheduled actions ----
  api.route("GET", base + "schedules", [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    json list = json::array();
    for (const auto& [key, action] : m_specs.schedules) {
      if (key.first == request.path_params.at(0)) list.push_back(spec_json(action));
    }
    return respond(200, json{{"schedules", list}});
  });
  api.route("GET", base + "schedules" + one, [=, this](const ApiRequest& request) {
    auto it = m_specs.schedules.find({request.path_params.at(0), request.path_params.at(1)});
    if (it == m_specs.schedules.end()) return api_error(404, "no scheduled action '" + request.path_params.at(1) + "'");
    return respond(200, spec_json(it->second));
  });
  api.route("PUT", base + "schedules" + one, [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    auto body = named_body(request);
    if (!body) return body.error();
    auto action = scheduled_action_from_json(*body, request.path_params.at(0));
    if (!action) return from_json_error(action.error());
    if (auto check = check_schedule(*action); !check) return api_error(400, check.error().message, check.error().field);
    const auto key = std::pair{action->group, action->name};
    const auto existing = m_specs.schedules.find(key);
    const bool existed = existing != m_specs.schedules.end();
    // A new or changed action counts from now: fire times already past are
    // not run retroactively (a one-shot in the past never fires).
    ScheduledAction unchanged_state = *action;
    if (existed) unchanged_state.last_fired_ms = existing->second.last_fired_ms;
    if (existed && unchanged_state == existing->second) {
      action->last_fired_ms = existing->second.last_fired_ms;
    } else if (action->cron.empty() && action->start_ms && *action->start_ms <= now_ms()) {
      return api_error(400,
                       "start_time: " + format_rfc3339(*action->start_ms) +
                           " is in the past: a one-shot action (no cron) would never fire",
                       "start_time");
    } else {
      action->last_fired_ms = now_ms();
    }
    if (auto stored = m_store->put_scheduled_action(*action, now_ms()); !stored) {
      return from_store_error(stored.error());
    }
    m_specs.schedules[key] = *action;
    return respond(existed ? 200 : 201, spec_json(*action));
  });
  api.route("DELETE", base + "schedules" + one, [=, this](const ApiRequest& request) {
    const std::string& group = request.path_params.at(0);
    const std::string& name = request.path_params.at(1);
    if (auto deleted = m_store->delete_spec(store::SpecKind::ScheduledAction, group, name); !deleted) {
      return from_store_error(deleted.error());
    }
    m_specs.schedules.erase({group, name});
    return respond(200, json{{"message", "deleted scheduled action " + name}});
  });

  // ---- lifecycle hooks ----
  api.route("GET", base + "hooks", [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    json list = json::array();
    for (const auto& [key, hook] : m_specs.hooks) {
      if (key.first == request.path_params.at(0)) list.push_back(to_json(hook));
    }
    return respond(200, json{{"hooks", list}});
  });
  api.route("GET", base + "hooks" + one, [=, this](const ApiRequest& request) {
    auto it = m_specs.hooks.find({request.path_params.at(0), request.path_params.at(1)});
    if (it == m_specs.hooks.end()) return api_error(404, "no lifecycle hook '" + request.path_params.at(1) + "'");
    return respond(200, to_json(it->second));
  });
  api.route("PUT", base + "hooks" + one, [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    auto body = named_body(request);
    if (!body) return body.error();
    auto hook = lifecycle_hook_from_json(*body, request.path_params.at(0));
    if (!hook) return from_json_error(hook.error());
    if (auto stored = m_store->put_lifecycle_hook(*hook, now_ms()); !stored) return from_store_error(stored.error());
    const auto key = std::pair{hook->group, hook->name};
    const bool existed = m_specs.hooks.count(key) != 0;
    m_specs.hooks[key] = *hook;
    hooks_changed(hook->group);
    return respond(existed ? 200 : 201, to_json(*hook));
  });
  api.route("DELETE", base + "hooks" + one, [=, this](const ApiRequest& request) {
    const std::string& group = request.path_params.at(0);
    const std::string& name = request.path_params.at(1);
    if (auto deleted = m_store->delete_spec(store::SpecKind::LifecycleHook, group, name); !deleted) {
      return from_store_error(deleted.error());
    }
    m_specs.hooks.erase({group, name});
    hooks_changed(group);
    return respond(200, json{{"message", "deleted lifecycle hook " + name}});
  });

  // ---- lifecycle actions: instances a hook holds ----
  api.route("GET", base + "lifecycle-actions", [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    json list = json::array();
    for (const PendingLifecycleAction& action : m_fleet->lifecycle_actions(request.path_params.at(0))) {
      list.push_back(json{{"instance_id", action.instance_id},
                          {"hook", action.hook_name},
                          {"transition", to_string(action.transition)},
                          {"token", action.token},
                          {"agent_script", action.agent_script},
                          {"started_ms", action.started_ms},
                          {"deadline_ms", action.deadline_ms},
                          {"give_up_ms", action.give_up_ms},
                          {"default_result", to_string(action.default_result)}});
    }
    return respond(200, json{{"lifecycle_actions", list}});
  });
  // {hook?, token?, result} — by instance (every pending action of it when
  // no hook is named); /v1/lifecycle/complete takes a token alone.
  const auto lifecycle_body = [](const ApiRequest& request, bool needs_result)
      -> tl::expected<std::tuple<std::string, std::string, HookResult>, ApiResponse> {
    const json& body = body_or_empty(request);
    if (!body.is_object()) return tl::make_unexpected(api_error(400, "the body must be a JSON object"));
    for (const auto& [key, value] : body.items()) {
      if (key != "hook" && key != "token" && key != "result") return tl::make_unexpected(api_error(400, key + ": unknown field", key));
      if (!value.is_string()) return tl::make_unexpected(api_error(400, key + ": must be a string", key));
    }
    HookResult result = HookResult::Continue;
    if (needs_result) {
      const auto parsed = from_string<HookResult>(body.value("result", ""));
      if (!parsed) return tl::make_unexpected(api_error(400, "result: required, continue or abandon", "result"));
      result = *parsed;
    }
    return std::tuple{body.value("hook", std::string()), body.value("token", std::string()), result};
  };
  const auto instance_status = [this](const std::string& id) {
    return m_fleet->instance(id) == nullptr ? 404 : 409;
  };
  api.route("POST", R"(/v1/instances/([^/]+)/lifecycle/complete)", [=, this](const ApiRequest& request) {
    auto parsed = lifecycle_body(request, true);
    if (!parsed) return parsed.error();
    const auto& [hook, token, result] = *parsed;
    const std::string& id = request.path_params.at(0);
    std::vector<Command> out;
    if (auto done = m_fleet->complete_lifecycle_action(id, hook, token, result, now_ms(), out); !done) {
      return api_error(instance_status(id), done.error().message);
    }
    execute(std::move(out));
    const Instance* instance = m_fleet->instance(id);
    return respond(200, json{{"instance_id", id},
                             {"result", to_string(result)},
                             {"state", instance != nullptr ? std::string(to_string(instance->state)) : "gone"}});
  });
  api.route("POST", R"(/v1/instances/([^/]+)/lifecycle/heartbeat)", [=, this](const ApiRequest& request) {
    auto parsed = lifecycle_body(request, false);
    if (!parsed) return parsed.error();
    const auto& [hook, token, result] = *parsed;
    const std::string& id = request.path_params.at(0);
    auto deadline = m_fleet->record_lifecycle_heartbeat(id, hook, token, now_ms());
    if (!deadline) return api_error(instance_status(id), deadline.error().message);
    return respond(200, json{{"instance_id", id}, {"deadline_ms", *deadline}});
  });
  api.route("POST", "/v1/lifecycle/complete", [=, this](const ApiRequest& request) {
    auto parsed = lifecycle_body(request, true);
    if (!parsed) return parsed.error();
    const auto& [hook, token, result] = *parsed;
    if (token.empty()) return api_error(400, "token: required (or use /v1/instances/{id}/lifecycle/complete)", "token");
    if (!hook.empty()) return api_error(400, "hook: not used with a token alone", "hook");
    std::vector<Command> out;
    if (auto done = m_fleet->complete_lifecycle_action_by_token(token, result, now_ms(), out); !done) {
      return api_error(404, done.error().message);
    }
    execute(std::move(out));
    return respond(200, json{{"token", token}, {"result", to_string(result)}});
  });

  // ---- notification targets ----
  api.route("GET", base + "notifications", [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    json list = json::array();
    for (const auto& [key, target] : m_specs.notifications) {
      if (key.first == request.path_params.at(0)) list.push_back(to_json(target));
    }
    return respond(200, json{{"notifications", list}});
  });
  api.route("GET", base + "notifications" + one, [=, this](const ApiRequest& request) {
    auto it = m_specs.notifications.find({request.path_params.at(0), request.path_params.at(1)});
    if (it == m_specs.notifications.end()) {
      return api_error(404, "no notification target '" + request.path_params.at(1) + "'");
    }
    return respond(200, to_json(it->second));
  });
  api.route("PUT", base + "notifications" + one, [=, this](const ApiRequest& request) {
    if (!group_exists(request)) return no_group(request);
    auto body = named_body(request);
    if (!body) return body.error();
    auto target = notification_target_from_json(*body, request.path_params.at(0));
    if (!target) return from_json_error(target.error());
    if (auto stored = m_store->put_notification_target(*target, now_ms()); !stored) {
      return from_store_error(stored.error());
    }
    const auto key = std::pair{target->group, target->name};
    const bool existed = m_specs.notifications.count(key) != 0;
    m_specs.notifications[key] = *target;
    return respond(existed ? 200 : 201, to_json(*target));
  });
  api.route("DELETE", base + "notifications" + one, [=, this](const ApiRequest& request) {
    const std::string& group = request.path_params.at(0);
    const std::string& name = request.path_params.at(1);
    if (auto deleted = m_store->delete_spec(store::SpecKind::NotificationTarget, group, name); !deleted) {
      return from_store_error(deleted.error());
    }
    m_specs.notifications.erase({group, name});
    return respond(200, json{{"message", "deleted notification target " + name}});
  });
}

}  // namespace tide::coordinator
