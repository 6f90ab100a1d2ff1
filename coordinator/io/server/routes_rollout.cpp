// The rollout routes (docs/rollout.md, "API"): start a rollout of a group,
// look at it and its history, pause, resume, cancel or roll it back. The
// decisions are the core's (Fleet::start_rollout, act_on_rollout); the store
// keeps every record, the finished ones included.
#include <charconv>

#include "coordinator/io/json/rollout_json.hpp"
#include "coordinator/io/server/route_helpers.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

using nlohmann::json;

json Server::rollout_json(const Rollout& rollout) const {
  json body = to_json(rollout);
  if (!is_terminal(rollout.state)) {
    const Fleet::RolloutProgress p = m_fleet->rollout_progress(rollout.group, rollout);
    body["progress"] = {{"desired", p.desired},
                        {"target_instances", p.target_instances},
                        {"old_instances", p.old_instances},
                        {"serving", p.serving}};
    if (const auto figures = m_fleet->canary_figures(rollout.group)) {
      const auto traffic = [](const TrafficFigures& f) {
        return json{{"requests", f.requests},
                    {"errors_5xx", f.errors_5xx},
                    {"connection_errors", f.connection_errors},
                    {"mean_response_ms", f.mean_response_ms}};
      };
      body["canary_figures"] = {{"canary", traffic(figures->first)}, {"baseline", traffic(figures->second)}};
    }
  }
  return body;
}

void Server::register_rollout_routes() {
  HttpApi& api = *m_api;

  api.route("POST", R"(/v1/groups/([^/]+)/rollouts)", [this](const ApiRequest& request) {
    const std::string& name = request.path_params.at(0);
    const ScalingGroup* group = m_fleet->group(name);
    if (group == nullptr) return api_error(404, "no group '" + name + "'");
    auto parsed = parse_rollout_request(body_or_empty(request));
    if (!parsed) return api_error(400, parsed.error().message, parsed.error().field);
    if (const Rollout* running = m_fleet->rollout(name); running != nullptr) {
      return api_error(409, "group '" + name + "' has rollout " + running->id + " " +
                                std::string(to_string(running->state)) + ": cancel it or wait for it to finish");
    }
    const std::string lc = parsed->launch_configuration.empty() ? group->launch_configuration_id
                                                                : parsed->launch_configuration;
    auto config = parsed->version == 0 ? m_store->get_latest_launch_configuration(lc)
                                       : m_store->get_launch_configuration(lc, parsed->version);
    if (!config) {
      if (config.error().kind == store::StoreError::Kind::NotFound) {
        return api_error(404,
                         "no launch configuration '" + lc + "'" +
                             (parsed->version == 0 ? "" : " version " + std::to_string(parsed->version)),
                         parsed->version == 0 ? "launch_configuration" : "version");
      }
      return from_store_error(config.error());
    }
    std::vector<Command> out;
    auto started = m_fleet->start_rollout(name, new_rollout_id(), config->id, config->version,
                                          std::move(parsed->strategy), now_ms(), out);
    if (!started) return api_error(400, started.error().message, started.error().field);
    execute(std::move(out));
    const Rollout* now_running = m_fleet->rollout(name);
    return respond(201, rollout_json(now_running != nullptr ? *now_running : *started));
  });

  api.route("GET", R"(/v1/groups/([^/]+)/rollout)", [this](const ApiRequest& request) {
    const std::string& name = request.path_params.at(0);
    if (m_fleet->group(name) == nullptr) return api_error(404, "no group '" + name + "'");
    if (const Rollout* running = m_fleet->rollout(name); running != nullptr) return respond(200, rollout_json(*running));
    auto latest = m_store->list_rollouts(name, 1);
    if (!latest) return from_store_error(latest.error());
    if (latest->empty()) return api_error(404, "group '" + name + "' has never had a rollout");
    return respond(200, rollout_json(latest->front()));
  });

  api.route("GET", R"(/v1/groups/([^/]+)/rollouts)", [this](const ApiRequest& request) {
    const std::string& name = request.path_params.at(0);
    if (m_fleet->group(name) == nullptr) return api_error(404, "no group '" + name + "'");
    std::size_t limit = 20;
    if (const auto it = request.params.find("limit"); it != request.params.end()) {
      const std::string& text = it->second;
      std::size_t value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > 1000) {
        return api_error(400, "limit: an integer from 1 to 1000, got '" + text + "'", "limit");
      }
      limit = value;
    }
    auto listed = m_store->list_rollouts(name, limit);
    if (!listed) return from_store_error(listed.error());
    json rollouts = json::array();
    for (const Rollout& r : *listed) {
      // The store's copy of a running rollout may be a step behind the fleet's.
      const Rollout* running = m_fleet->rollout(name);
      rollouts.push_back(rollout_json(running != nullptr && running->id == r.id ? *running : r));
    }
    return respond(200, json{{"rollouts", rollouts}});
  });

  for (const auto& [verb, action] : {std::pair{"pause", Fleet::RolloutAction::Pause},
                                     std::pair{"resume", Fleet::RolloutAction::Resume},
                                     std::pair{"cancel", Fleet::RolloutAction::Cancel},
                                     std::pair{"rollback", Fleet::RolloutAction::Rollback}}) {
    api.route("POST", std::string(R"(/v1/groups/([^/]+)/rollout/)") + verb,
              [this, action = action](const ApiRequest& request) {
                const std::string& name = request.path_params.at(0);
                if (m_fleet->group(name) == nullptr) return api_error(404, "no group '" + name + "'");
                const json& body = body_or_empty(request);
                if (!body.is_object()) return api_error(400, "the request body must be a JSON object");
                std::string reason;
                for (const auto& [key, value] : body.items()) {
                  if (key != "reason") return api_error(400, key + ": unknown field", key);
                  if (!value.is_string() || value.get_ref<const std::string&>().size() > 1024) {
                    return api_error(400, "reason: a string of at most 1024 bytes", "reason");
                  }
                  reason = value.get<std::string>();
                }
                if (m_fleet->rollout(name) == nullptr) {
                  return api_error(404, "group '" + name + "' has no rollout in progress");
                }
                std::vector<Command> out;
                auto done = m_fleet->act_on_rollout(name, action, std::move(reason), now_ms(), out);
                if (!done) return api_error(409, done.error().message);
                execute(std::move(out));
                return respond(200, rollout_json(*done));
              });
  }
}

}  // namespace tide::coordinator
