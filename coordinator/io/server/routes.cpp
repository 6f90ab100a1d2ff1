// The admin API's routes (docs/api.md). Handlers run on the loop thread; a
// request is validated whole before anything changes, so a refused request
// leaves no trace.
#include <algorithm>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/spdlog.h>

#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/load_balancer.hpp"
#include "coordinator/io/json/json_model.hpp"
#include "coordinator/io/provider/provider.hpp"
#include "coordinator/io/server/route_helpers.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

using nlohmann::json;

namespace {

// An agent's REPORT as the instance's detail shows it.
json report_json(const protocol::Report& report, TimeMs received_ms) {
  json probes = json::array();
  for (const auto& probe : report.probes) {
    probes.push_back({{"name", probe.name},
                      {"kind", std::string(protocol::to_string(probe.kind))},
                      {"passing", probe.passing},
                      {"message", probe.message},
                      {"latency_ms", probe.latency_ms}});
  }
  json metrics = json::object();
  const auto put = [&](const char* name, const auto& value) {
    if (value) metrics[name] = *value;
  };
  put("cpu_pct", report.metrics.cpu_pct);
  put("memory_pct", report.metrics.memory_pct);
  put("load1", report.metrics.load1);
  put("net_in_bps", report.metrics.net_in_bps);
  put("net_out_bps", report.metrics.net_out_bps);
  put("tcp_established", report.metrics.tcp_established);
  for (const auto& [name, value] : report.metrics.custom) metrics["custom"][name] = value;
  return {{"received_ms", received_ms}, {"seq", report.seq},           {"ready", report.ready},
          {"ready_reason", report.ready_reason}, {"healthy", report.healthy}, {"health_reason", report.health_reason},
          {"draining", report.draining}, {"probes", probes},             {"metrics", metrics}};
}

ApiResponse created(json body) {
  return respond(201, std::move(body));
}

ApiResponse ok(json body) {
  return respond(200, std::move(body));
}

bool is_live(const Instance& instance) {
  return instance.state != LifecycleState::Terminated &&
         instance.state != LifecycleState::LaunchFailed &&
         instance.state != LifecycleState::Detached;
}

// Which of a group's policies read one series (metric_series), and over how long.
struct MetricUse {
  std::string name;   // the metric's name (for a query: the first policy's name for it)
  std::string query;  // non-empty: a Prometheus query
  std::vector<std::string> used_by;  // policy names
  std::int64_t window_ms = 0;        // the longest window those policies look at
};

// Without a policy, a metric is shown over the same 10 s as /metrics.
constexpr std::int64_t kUnusedMetricWindowMs = 10'000;

json window_json(const MetricWindows& windows, const std::string& group, const std::string& metric,
                 TimeMs from_ms, TimeMs to_ms) {
  const auto stats = windows.stats(group, metric, from_ms, to_ms);
  return json{{"average", stats ? json(stats->average) : json(nullptr)},
              {"minimum", stats ? json(stats->minimum) : json(nullptr)},
              {"maximum", stats ? json(stats->maximum) : json(nullptr)},
              {"samples", stats ? stats->samples : 0U},
              {"reporters", windows.reporters_since(group, metric, from_ms)}};
}

// Every metric a policy of the group uses (even without data) and every
// metric with samples, sorted by name, each over the longest window a policy
// reads it (docs/api.md, "Group metrics"). Read-only: it reports what the
// windows hold, the scaling core decides with the same figures.
json group_metrics_json(const ScalingGroup& group, const std::map<SpecKey, ScalingPolicy>& policies,
                        const MetricWindows& windows, const QueryHealth& query_health,
                        const std::vector<const Instance*>& instances, TimeMs now) {
  std::map<std::string, MetricUse> uses;  // by series
  for (const auto& [key, policy] : policies) {
    if (key.first != group.name) continue;
    std::visit(
        [&](const auto& p) {
          std::int64_t window_ms = 0;
          if constexpr (std::is_same_v<std::decay_t<decltype(p)>, AlarmPolicy>) {
            window_ms = p.period_ms * static_cast<std::int64_t>(p.evaluation_periods);
          } else {
            window_ms = p.window_ms;
          }
          MetricUse& use = uses[metric_series(p.metric, p.query)];
          if (use.used_by.empty()) {
            use.name = p.metric;
            use.query = p.query;
          }
          use.used_by.push_back(p.name);
          use.window_ms = std::max(use.window_ms, window_ms);
        },
        policy);
  }
  for (const std::string& series : windows.metrics_of(group.name)) {
    // A query no policy reads any more has no name to show.
    if (is_query_series(series)) continue;
    uses.try_emplace(series, MetricUse{series, "", {}, 0});
  }

  std::uint32_t eligible_agent = 0, eligible_lb = 0;
  for (const Instance* instance : instances) {
    if (!metrics_eligible(*instance, group, now)) continue;
    ++eligible_agent;
    if (instance->runtime.in_lb) ++eligible_lb;
  }

  json list = json::array();
  for (const auto& [series, use] : uses) {
    const MetricSource source = metric_source(use.name, use.query);
    const std::int64_t window_ms = use.used_by.empty() ? kUnusedMetricWindowMs : use.window_ms;
    json entry = window_json(windows, group.name, series, now - window_ms, now);
    // What a complete window needs: every eligible instance (in rotation,
    // for the load balancer's figures), or the query's one value.
    const std::uint32_t eligible = source == MetricSource::Prometheus     ? 1
                                   : source == MetricSource::LoadBalancer ? eligible_lb
                                                                          : eligible_agent;
    const auto samples = entry["samples"].get<std::uint64_t>();
    const auto reporters = entry["reporters"].get<std::uint32_t>();
    const std::string blocks = use.used_by.empty() ? "" : ", which blocks scale-in";
    json note = nullptr;
    const std::string_view query_error = query_health.last_error(group.name, use.query);
    if (source == MetricSource::Prometheus && !query_error.empty()) {
      note = "query failing: " + std::string(query_error);
    } else if (samples == 0) {
      note = "missing data: no sample in the last " + duration_text(window_ms) + blocks;
    } else if (source != MetricSource::Prometheus && reporters < eligible) {
      note = "incomplete data: " + std::to_string(reporters) + " of " + std::to_string(eligible) +
             " eligible instances reported" + blocks;
    }
    entry["name"] = use.name;
    entry["source"] = to_string(source);
    if (!use.query.empty()) entry["query"] = use.query;
    entry["used_by"] = use.used_by;
    entry["window_ms"] = window_ms;
    entry["eligible"] = eligible;
    entry["last_10s"] = window_json(windows, group.name, series, now - kUnusedMetricWindowMs, now);
    entry["note"] = std::move(note);
    list.push_back(std::move(entry));
  }
  return json{{"group", group.name}, {"at_ms", now}, {"metrics", std::move(list)}};
}

}  // namespace

ApiResponse respond(int status, json body) {
  ApiResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

ApiResponse from_json_error(const JsonError& error) {
  return api_error(400, error.field.empty() ? error.message : error.field + ": " + error.message,
                   error.field);
}

ApiResponse from_store_error(const store::StoreError& error) {
  switch (error.kind) {
    case store::StoreError::Kind::NotFound:
      return api_error(404, error.message);
    case store::StoreError::Kind::InUse:
      return api_error(409, error.message);
    case store::StoreError::Kind::Constraint:
      return api_error(409, error.message);
    case store::StoreError::Kind::Invalid:
      return api_error(400, error.message);
    case store::StoreError::Kind::Io:
    case store::StoreError::Kind::Corrupt:
    case store::StoreError::Kind::Busy:
    case store::StoreError::Kind::NewerSchema:
    case store::StoreError::Kind::Internal:
      break;
  }
  return api_error(500, error.message);
}

const json& body_or_empty(const ApiRequest& request) {
  static const json kEmpty = json::object();
  return request.body ? *request.body : kEmpty;
}

// The body of an action route: a JSON object (or none) with no key but
// `allowed`, so a typo is a 400 naming it instead of a silent default.
tl::expected<const json*, ApiResponse> action_body(
    const ApiRequest& request, std::initializer_list<std::string_view> allowed) {
  const json& body = body_or_empty(request);
  if (!body.is_object())
    return tl::make_unexpected(api_error(400, "the request body must be a JSON object"));
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return tl::make_unexpected(api_error(400, key + ": unknown field", key));
    }
  }
  return &body;
}

// An optional boolean field: `fallback` when absent, a 400 naming it when it
// is anything but true or false.
tl::expected<bool, ApiResponse> optional_bool(const json& body, const std::string& key,
                                              bool fallback) {
  if (!body.contains(key)) return fallback;
  if (!body[key].is_boolean())
    return tl::make_unexpected(api_error(400, key + ": must be true or false", key));
  return body[key].get<bool>();
}

void Server::register_routes() {
  HttpApi& api = *m_api;

  api.public_route("GET", "/healthz", [this](const ApiRequest&) {
    return ok(json{{"status", "ok"},
                   {"instances", m_fleet->instance_count()},
                   {"agent_sessions", m_gateway->stats().sessions},
                   {"agent_endpoint", m_agent_endpoint}});
  });
  api.public_route("GET", "/metrics", [this](const ApiRequest&) {
    ApiResponse response;
    response.text = metrics_text();
    response.content_type = "text/plain; version=0.0.4";
    return response;
  });

  // ---- launch configurations ----
  api.route("POST", "/v1/launch-configurations", [this](const ApiRequest& request) {
    auto config = launch_configuration_from_json(body_or_empty(request));
    if (!config) return from_json_error(config.error());
    config->created_ms = now_ms();
    if (auto valid = validate(*config); !valid)
      return api_error(400, valid.error().message, valid.error().field);
    auto stored = m_store->create_launch_configuration_version(*config);
    if (!stored) return from_store_error(stored.error());
    if (auto put = m_fleet->put_launch_configuration(*stored); !put)
      return api_error(400, put.error().message, put.error().field);
    return created(to_json(*stored));
  });
  api.route("GET", "/v1/launch-configurations", [this](const ApiRequest&) {
    auto configs = m_store->list_launch_configurations();
    if (!configs) return from_store_error(configs.error());
    json list = json::array();
    for (const auto& config : *configs) list.push_back(to_json(config));
    return ok(json{{"launch_configurations", list}});
  });
  api.route("GET", R"(/v1/launch-configurations/([^/]+))", [this](const ApiRequest& request) {
    const std::string& id = request.path_params.at(0);
    auto config = request.params.count("version") != 0
                      ? m_store->get_launch_configuration(
                            id, static_cast<std::uint32_t>(std::strtoul(
                                    request.params.at("version").c_str(), nullptr, 10)))
                      : m_store->get_latest_launch_configuration(id);
    if (!config) return from_store_error(config.error());
    return ok(to_json(*config));
  });
  api.route("DELETE", R"(/v1/launch-configurations/([^/]+))", [this](const ApiRequest& request) {
    const std::string& id = request.path_params.at(0);
    auto configs = m_store->list_launch_configurations();
    if (!configs) return from_store_error(configs.error());
    std::vector<std::uint32_t> versions;
    for (const auto& config : *configs) {
      if (config.id != id) continue;
      auto used = m_store->launch_configuration_in_use(id, config.version);
      if (!used) return from_store_error(used.error());
      if (*used)
        return api_error(409, "launch configuration " + id + " v" + std::to_string(config.version) +
                                  " is in use");
      versions.push_back(config.version);
    }
    if (versions.empty()) return api_error(404, "no launch configuration '" + id + "'");
    for (const auto version : versions) {
      if (auto deleted = m_store->delete_launch_configuration(id, version); !deleted)
        return from_store_error(deleted.error());
    }
    return ok(json{{"message", "deleted launch configuration " + id}});
  });

  // ---- groups ----
  const auto group_json = [this](const ScalingGroup& group) {
    json body = to_json(group);
    std::size_t actual = 0, in_service = 0, healthy = 0, in_lb = 0;
    json states = json::object();
    for (const Instance* instance : m_fleet->instances_of(group.name)) {
      if (!is_live(*instance)) continue;
      ++actual;
      if (instance->state == LifecycleState::InService) ++in_service;
      if (instance->health == Health::Healthy) ++healthy;
      if (instance->runtime.in_lb) ++in_lb;
      const std::string state(to_string(instance->state));
      states[state] = states.value(state, 0) + 1;
    }
    body["actual"] = actual;
    body["in_service"] = in_service;
    body["instances_by_state"] = states;
    body["healthy"] = healthy;
    body["unhealthy"] = actual - healthy;
    body["in_lb"] = in_lb;
    body["fail_static"] = m_fleet->in_fail_static(group.name);
    if (const Rollout* rollout = m_fleet->rollout(group.name); rollout != nullptr) {
      body["rollout"] = {{"id", rollout->id}, {"state", to_string(rollout->state)}};
    }
    return body;
  };
  api.route("POST", "/v1/groups", [this, group_json](const ApiRequest& request) {
    auto group = group_from_json(body_or_empty(request));
    if (!group) return from_json_error(group.error());
    if (m_fleet->group(group->name) != nullptr)
      return api_error(409, "group '" + group->name + "' exists", "name");
    auto config = m_store->get_latest_launch_configuration(group->launch_configuration_id);
    if (!config)
      return api_error(
          400,
          "launch_configuration: no launch configuration '" + group->launch_configuration_id + "'",
          "launch_configuration");
    group->launch_configuration_version = config->version;
    group->created_ms = group->updated_ms = now_ms();
    if (auto valid = validate(*group); !valid)
      return api_error(400, valid.error().message, valid.error().field);
    if (!group->lb.backend.empty()) {
      bool known = false;
      for (const auto& backend : m_config.load_balancer.backends)
        known = known || backend.name == group->lb.backend;
      if (!known)
        return api_error(400,
                         "load_balancer.backend: no backend '" + group->lb.backend +
                             "' in the coordinator's configuration",
                         "load_balancer.backend");
    }
    // Written first so that a store failure refuses the request whole; the
    // core's PersistGroup then finds the row.
    if (auto inserted = m_store->insert_group(*group); !inserted)
      return from_store_error(inserted.error());
    std::vector<Command> out;
    if (auto put = m_fleet->put_group(*group, now_ms(), out); !put)
      return api_error(400, put.error().message, put.error().field);
    execute(std::move(out));
    return created(group_json(*group));
  });
  api.route("GET", "/v1/groups", [this, group_json](const ApiRequest&) {
    auto groups = m_store->list_groups();
    if (!groups) return from_store_error(groups.error());
    json list = json::array();
    for (const auto& stored : *groups) {
      const ScalingGroup* group = m_fleet->group(stored.name);
      list.push_back(group_json(group != nullptr ? *group : stored));
    }
    return ok(json{{"groups", list}});
  });
  api.route("GET", R"(/v1/groups/([^/]+))", [this, group_json](const ApiRequest& request) {
    const ScalingGroup* group = m_fleet->group(request.path_params.at(0));
    if (group == nullptr) return api_error(404, "no group '" + request.path_params.at(0) + "'");
    return ok(group_json(*group));
  });
  api.route("PATCH", R"(/v1/groups/([^/]+))", [this, group_json](const ApiRequest& request) {
    const ScalingGroup* current = m_fleet->group(request.path_params.at(0));
    if (current == nullptr) return api_error(404, "no group '" + request.path_params.at(0) + "'");
    auto group = patch_group(*current, body_or_empty(request));
    if (!group) return from_json_error(group.error());
    if (group->launch_configuration_id != current->launch_configuration_id) {
      auto config = m_store->get_latest_launch_configuration(group->launch_configuration_id);
      if (!config)
        return api_error(400,
                         "launch_configuration: no launch configuration '" +
                             group->launch_configuration_id + "'",
                         "launch_configuration");
      group->launch_configuration_version = config->version;
    }
    if (auto valid = validate(*group); !valid)
      return api_error(400, valid.error().message, valid.error().field);
    const Rollout* running = m_fleet->rollout(group->name);
    if (running != nullptr &&
        (group->launch_configuration_id != current->launch_configuration_id ||
         group->launch_configuration_version != current->launch_configuration_version)) {
      // The rollout decides what the group launches until it ends.
      return api_error(409,
                       "group '" + group->name + "' has rollout " + running->id + " " +
                           std::string(to_string(running->state)) +
                           ": its launch configuration is the rollout's until it ends (cancel it, "
                           "roll it back or "
                           "wait)",
                       "launch_configuration");
    }
    group->updated_ms = now_ms();
    std::vector<Command> out;
    ScalingGroup only_desired = *current;
    only_desired.desired = group->desired;
    only_desired.updated_ms = group->updated_ms;
    if (only_desired == *group && group->desired != current->desired) {
      const std::string cause = "user request (API)";
      if (auto set = m_fleet->set_desired(group->name, group->desired, cause, now_ms(), out);
          !set) {
        return api_error(400, set.error().message, set.error().field);
      }
    } else if (auto put = m_fleet->put_group(*group, now_ms(), out); !put) {
      return api_error(400, put.error().message, put.error().field);
    }
    execute(std::move(out));
    return ok(group_json(*m_fleet->group(group->name)));
  });
  for (const bool enable : {true, false}) {
    api.route("POST", std::string(R"(/v1/groups/([^/]+)/)") + (enable ? "enable" : "disable"),
              [this, group_json, enable](const ApiRequest& request) {
                const ScalingGroup* current = m_fleet->group(request.path_params.at(0));
                if (current == nullptr)
                  return api_error(404, "no group '" + request.path_params.at(0) + "'");
                ScalingGroup group = *current;
                group.enabled = enable;
                group.updated_ms = now_ms();
                std::vector<Command> out;
                if (auto put = m_fleet->put_group(group, now_ms(), out); !put)
                  return api_error(400, put.error().message, put.error().field);
                execute(std::move(out));
                return ok(group_json(*m_fleet->group(group.name)));
              });
  }

  api.route("DELETE", R"(/v1/groups/([^/]+))", [this](const ApiRequest& request) {
    const std::string& name = request.path_params.at(0);
    if (m_fleet->group(name) == nullptr) return api_error(404, "no group '" + name + "'");
    // The store refuses too while an instance is alive; the fleet is asked
    // first so that memory and disk agree.
    std::size_t live = 0;
    for (const Instance* instance : m_fleet->instances_of(name))
      live += is_live(*instance) ? 1U : 0U;
    if (live != 0)
      return api_error(409, "group '" + name + "' still has " + std::to_string(live) +
                                " instance(s): set desired to 0 first");
    if (auto deleted = m_store->delete_group(name); !deleted)
      return from_store_error(deleted.error());
    if (auto removed = m_fleet->remove_group(name); !removed)
      return api_error(409, removed.error().message);
    forget_group_specs(name);
    return ok(json{{"message", "deleted group " + name}});
  });

  api.route("GET", R"(/v1/groups/([^/]+)/metrics)", [this](const ApiRequest& request) {
    const ScalingGroup* group = m_fleet->group(request.path_params.at(0));
    if (group == nullptr) return api_error(404, "no group '" + request.path_params.at(0) + "'");
    return ok(group_metrics_json(*group, m_specs.policies, m_metrics, m_query_health,
                                 m_fleet->instances_of(group->name), now_ms()));
  });

  // ---- instances ----
  api.route("GET", "/v1/instances", [this](const ApiRequest& request) {
    json list = json::array();
    const bool all = request.params.count("all") != 0;
    const bool one_group = request.params.count("group") != 0;
    if (one_group && m_fleet->group(request.params.at("group")) == nullptr) {
      return api_error(404, "no group '" + request.params.at("group") + "'");
    }
    if (all) {
      // Terminal instances live on only in the store: the live ones as the
      // fleet knows them, the others as recorded.
      auto stored = one_group ? m_store->list_instances(request.params.at("group"))
                              : m_store->list_instances();
      if (!stored) return from_store_error(stored.error());
      for (const Instance& row : *stored) {
        const Instance* live = m_fleet->instance(row.id);
        list.push_back(to_json(live != nullptr ? *live : row));
      }
      return ok(json{{"instances", list}});
    }
    const auto add = [&](const std::string& group) {
      for (const Instance* instance : m_fleet->instances_of(group)) {
        if (is_live(*instance)) list.push_back(to_json(*instance));
      }
    };
    if (one_group) {
      add(request.params.at("group"));
    } else {
      auto groups = m_store->list_groups();
      if (!groups) return from_store_error(groups.error());
      for (const auto& group : *groups) add(group.name);
    }
    return ok(json{{"instances", list}});
  });
  api.route("GET", R"(/v1/instances/([^/]+))", [this](const ApiRequest& request) {
    const Instance* instance = m_fleet->instance(request.path_params.at(0));
    if (instance == nullptr) {
      auto stored = m_store->get_instance(request.path_params.at(0));
      if (!stored) return from_store_error(stored.error());
      return ok(to_json(*stored));
    }
    json body = to_json(*instance);
    // What only this coordinator's memory holds: the agent's last REPORT
    // and the load balancer's slot.
    if (const auto report = m_last_reports.find(instance->id); report != m_last_reports.end()) {
      body["report"] = report_json(report->second.second, report->second.first);
    }
    const ScalingGroup* group = m_fleet->group(instance->group);
    if (m_lb && group != nullptr && !group->lb.backend.empty()) {
      const auto& slots = m_lb->driver().assignment(group->lb.backend);
      if (const auto slot = slots.find(instance->id); slot != slots.end()) {
        body["lb_slot"] = {{"backend", group->lb.backend}, {"slot", slot->second}};
      }
    }
    return ok(body);
  });
  api.route("POST", R"(/v1/groups/([^/]+)/attach)", [this](const ApiRequest& request) {
    auto checked = action_body(request, {"address", "port", "protected", "increment_desired"});
    if (!checked) return checked.error();
    const json& body = **checked;
    if (!body.contains("address") || !body["address"].is_string() ||
        body["address"].get<std::string>().empty()) {
      return api_error(400, "address: required string", "address");
    }
    if (!body.contains("port") || !body["port"].is_number_integer() ||
        body["port"].get<std::int64_t>() < 1 || body["port"].get<std::int64_t>() > 65535) {
      return api_error(400, "port: required, 1..65535", "port");
    }
    const auto protect = optional_bool(body, "protected", false);
    if (!protect) return protect.error();
    const auto increment = optional_bool(body, "increment_desired", true);
    if (!increment) return increment.error();
    std::vector<Command> out;
    auto attached = m_fleet->attach(request.path_params.at(0), body["address"].get<std::string>(),
                                    static_cast<std::uint16_t>(body["port"].get<std::int64_t>()),
                                    *protect, *increment, now_ms(), out);
    if (!attached) {
      return api_error(m_fleet->group(request.path_params.at(0)) == nullptr ? 404 : 400,
                       attached.error().message);
    }
    execute(std::move(out));
    json response = to_json(attached->instance);
    // The attached server's agent needs these to say HELLO.
    response["agent_endpoint"] = m_agent_endpoint;
    response["coordinator_public_key"] = m_server_public_key;
    response["enrollment_token"] = attached->enrollment_token;
    return created(response);
  });
  api.route("POST", R"(/v1/instances/([^/]+)/detach)", [this](const ApiRequest& request) {
    auto body = action_body(request, {"decrement_desired"});
    if (!body) return body.error();
    const auto decrement = optional_bool(**body, "decrement_desired", false);
    if (!decrement) return decrement.error();
    std::vector<Command> out;
    auto done = m_fleet->detach(request.path_params.at(0), *decrement, now_ms(), out);
    if (!done) {
      return api_error(m_fleet->instance(request.path_params.at(0)) == nullptr ? 404 : 400,
                       done.error().message);
    }
    execute(std::move(out));
    return ok(to_json(*done));
  });
  api.route("POST", R"(/v1/instances/([^/]+)/terminate)", [this](const ApiRequest& request) {
    auto body = action_body(request, {"decrement_desired"});
    if (!body) return body.error();
    const auto decrement = optional_bool(**body, "decrement_desired", false);
    if (!decrement) return decrement.error();
    std::vector<Command> out;
    auto done = m_fleet->terminate(request.path_params.at(0), *decrement, now_ms(), out);
    if (!done) {
      return api_error(m_fleet->instance(request.path_params.at(0)) == nullptr ? 404 : 409,
                       done.error().message);
    }
    execute(std::move(out));
    return ok(to_json(*done));
  });
  api.route("POST", R"(/v1/instances/([^/]+)/protection)", [this](const ApiRequest& request) {
    auto checked = action_body(request, {"protected"});
    if (!checked) return checked.error();
    const json& body = **checked;
    if (!body.contains("protected") || !body["protected"].is_boolean())
      return api_error(400, "protected: required boolean", "protected");
    std::vector<Command> out;
    auto done = m_fleet->set_protected(request.path_params.at(0), body["protected"].get<bool>(),
                                       now_ms(), out);
    if (!done) {
      return api_error(m_fleet->instance(request.path_params.at(0)) == nullptr ? 404 : 400,
                       done.error().message);
    }
    execute(std::move(out));
    return ok(to_json(*done));
  });

  // ---- activities ----
  api.route("GET", R"(/v1/groups/([^/]+)/activities)", [this](const ApiRequest& request) {
    store::ActivityFilter filter;
    const auto& p = request.params;
    if (p.count("status") != 0) {
      filter.status = from_string<ActivityStatus>(p.at("status"));
      if (!filter.status)
        return api_error(400, "status: unknown activity status '" + p.at("status") + "'", "status");
    }
    if (p.count("type") != 0) {
      filter.type = from_string<ActivityType>(p.at("type"));
      if (!filter.type)
        return api_error(400, "type: unknown activity type '" + p.at("type") + "'", "type");
    }
    const auto number = [&](const char* key, auto& out, long long low, long long high) -> bool {
      if (p.count(key) == 0) return true;
      char* end = nullptr;
      const long long value = std::strtoll(p.at(key).c_str(), &end, 10);
      if (end == p.at(key).c_str() || *end != '\0' || value < low || value > high) return false;
      out = static_cast<std::remove_reference_t<decltype(out)>>(value);
      return true;
    };
    TimeMs since = 0, until = 0;
    if (!number("limit", filter.limit, 1, 1000))
      return api_error(400, "limit: must be 1..1000", "limit");
    if (!number("since", since, 0, INT64_MAX))
      return api_error(400, "since: epoch milliseconds", "since");
    if (!number("until", until, 0, INT64_MAX))
      return api_error(400, "until: epoch milliseconds", "until");
    if (p.count("since") != 0) filter.since_ms = since;
    if (p.count("until") != 0) filter.until_ms = until;
    if (m_fleet->group(request.path_params.at(0)) == nullptr)
      return api_error(404, "no group '" + request.path_params.at(0) + "'");
    auto activities = m_store->list_activities(request.path_params.at(0), filter);
    if (!activities) return from_store_error(activities.error());
    json list = json::array();
    for (const auto& activity : *activities) list.push_back(to_json(activity));
    return ok(json{{"activities", list}});
  });
  api.route("GET", R"(/v1/activities/([^/]+))", [this](const ApiRequest& request) {
    auto activity = m_store->get_activity(request.path_params.at(0));
    if (!activity) return from_store_error(activity.error());
    return ok(to_json(*activity));
  });
}

}  // namespace tide::coordinator
