// The web console's part of the shell (docs/console.md): one-time login links
// and what the live pages are told when something changes. The console's
// pages, login and event stream are served by HttpApi; its data comes from
// the same routes as tidectl's.
#include <string_view>

#include "coordinator/io/server/server.hpp"

namespace tide::coordinator {

using nlohmann::json;

namespace {

constexpr std::chrono::minutes kLoginLinkLifetime{10};

// "/v1/groups/web/policies/x" -> {"groups", "web", "policies"}; at most three.
std::vector<std::string_view> path_parts(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.rfind("/v1/", 0) != 0) return parts;
  path.remove_prefix(4);
  while (!path.empty() && parts.size() < 3) {
    const std::size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

void Server::register_console_routes() {
  // A link that logs a browser into the console once, for the next
  // kLoginLinkLifetime (tidectl console url, the demo).
  m_api->route("POST", "/v1/console/links", [this](const ApiRequest&) {
    const std::string code = m_api->issue_login_code(kLoginLinkLifetime);
    ApiResponse response;
    response.status = 201;
    response.body = {
        {"path", "/console/login?code=" + code},
        {"expires_ms", now_ms() + std::chrono::milliseconds(kLoginLinkLifetime).count()}};
    return response;
  });
}

void Server::note_change(const Command& command) {
  if (!m_changes) return;
  std::visit(
      [this](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        const auto instance = [this](const std::string& id) {
          const Instance* known = m_fleet->instance(id);
          m_changes->note("instance", known != nullptr ? known->group : std::string(), id);
        };
        if constexpr (std::is_same_v<T, PersistInstance>) {
          m_changes->note("instance", c.instance.group, c.instance.id);
        } else if constexpr (std::is_same_v<T, PersistGroup>) {
          m_changes->note("group", c.group.name);
        } else if constexpr (std::is_same_v<T, RecordActivity> ||
                             std::is_same_v<T, UpdateActivity>) {
          m_changes->note("activity", c.activity.group, c.activity.id);
        } else if constexpr (std::is_same_v<T, PersistRollout>) {
          m_changes->note("rollout", c.rollout.group, c.rollout.id);
        } else if constexpr (std::is_same_v<T, LbRegister> || std::is_same_v<T, LbDrain> ||
                             std::is_same_v<T, LbRemove>) {
          instance(c.instance_id);
        }
      },
      command);
}

void Server::note_change(const ApiRequest& request) {
  if (!m_changes) return;
  const auto parts = path_parts(request.path);
  if (parts.empty()) return;
  if (parts[0] == "groups" && parts.size() >= 2) {
    const bool spec = parts.size() == 3 && (parts[2] == "policies" || parts[2] == "schedules" ||
                                            parts[2] == "hooks" || parts[2] == "notifications");
    m_changes->note(spec ? "spec" : "group", parts[1]);
  } else if (parts[0] == "groups") {
    m_changes->note("group", "");  // a new group
  } else if (parts[0] == "instances" && parts.size() >= 2) {
    const Instance* known = m_fleet->instance(parts[1]);
    m_changes->note("instance", known != nullptr ? known->group : std::string(), parts[1]);
  } else if (parts[0] == "launch-configurations") {
    m_changes->note("launch_configuration", "", parts.size() >= 2 ? parts[1] : std::string_view());
  } else if (parts[0] == "apply") {
    m_changes->note("all", "");
  }
}

}  // namespace tide::coordinator
