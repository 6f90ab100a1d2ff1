// POST /v1/apply[?dry_run=true] (docs/apply.md): a whole fleet file — launch
// configurations and groups with their policies, schedules, hooks and
// notification targets — made true idempotently.
//
// Three phases, so that a bad file changes nothing:
//   1. parse and validate everything with the same parsers the other routes
//      use; an error names the JSON path ("groups[1].policies[0].threshold");
//   2. diff against what exists and list the changes;
//   3. unless it is a dry run, apply them in dependency order — launch
//      configurations, groups, then each group's specs — through the same
//      steps as the single-object routes (store first, then memory), and
//      last the rollouts the file asks for (a group entry's `rollout`,
//      started through Fleet::start_rollout as POST .../rollouts does).
// A store failure in phase 3 stops there: the answer is 500 and lists what
// was already applied (the store has no transaction across the fleet's
// in-memory state; validation first makes this unlikely).
#include <algorithm>
#include <cassert>
#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "coordinator/io/json/json_model.hpp"
#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/json/rollout_json.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

using nlohmann::json;

namespace {

// The spec lists a group body may carry besides the group's own fields.
constexpr const char* kSpecKeys[] = {"policies", "schedules", "hooks", "notifications"};
// A group body's rollout strategy: used when the apply changes the version
// the group runs, never stored as a field of the group.
constexpr const char* kRolloutKey = "rollout";

struct Refusal {
  std::string field;    // JSON path, e.g. "groups[0].policies[1].threshold"
  std::string message;
};

// 400 for a bad file; 409 for a good file the group's state does not allow now.
ApiResponse refuse(const Refusal& refusal, int status = 400) {
  ApiResponse response;
  response.status = status;
  response.body = json{{"error", refusal.field.empty() ? refusal.message : refusal.field + ": " + refusal.message},
                       {"field", refusal.field},
                       {"message", refusal.message}};
  return response;
}

std::string join_path(const std::string& prefix, const std::string& field) {
  if (field.empty()) return prefix;
  if (field.front() == '[') return prefix + field;
  return prefix + "." + field;
}

Refusal refusal_at(const std::string& prefix, const JsonError& error) {
  return Refusal{join_path(prefix, error.field), error.message};
}

// Names of the leaves that differ between two JSON objects ("load_balancer.port").
void diff_fields(const json& before, const json& after, const std::string& prefix, std::vector<std::string>& out) {
  std::set<std::string> keys;
  for (const auto& [key, value] : before.items()) keys.insert(key);
  for (const auto& [key, value] : after.items()) keys.insert(key);
  for (const auto& key : keys) {
    const json& a = before.contains(key) ? before[key] : json();
    const json& b = after.contains(key) ? after[key] : json();
    if (a == b) continue;
    if (a.is_object() && b.is_object()) {
      diff_fields(a, b, prefix + key + ".", out);
    } else {
      out.push_back(prefix + key);
    }
  }
}

std::vector<std::string> changed_fields(json before, json after, std::initializer_list<const char*> ignore = {}) {
  for (const char* key : ignore) {
    before.erase(key);
    after.erase(key);
  }
  std::vector<std::string> out;
  diff_fields(before, after, "", out);
  return out;
}

// A rollout the apply starts: from the version the group runs to the one
// it will run, with the entry's strategy.
struct PlannedRollout {
  std::string from;  // "web:1"
  std::string to;    // "web:2"
  RolloutStrategy strategy;
};

struct Change {
  std::string action;  // create, update, delete, unchanged; start (a rollout)
  std::string kind;    // launch_configuration, group, policy, schedule, hook, notification, rollout
  std::string name;    // "<group>/<name>" for specs; the group for a rollout
  std::vector<std::string> fields;
  std::optional<PlannedRollout> rollout;
  std::string rollout_id;  // once started
  json to_json() const;
};

// "batch 25%, max surge 1, min healthy 90%, canary 1, on failure rollback"
std::string describe(const RolloutStrategy& s) {
  std::string text = "batch " + to_string(s.batch) + ", max surge " + to_string(s.max_surge) + ", min healthy " +
                     to_string(s.min_healthy);
  if (s.canary.count > 0) text += ", canary " + std::to_string(s.canary.count);
  if (s.bake_ms > 0) text += ", bake " + std::to_string(s.bake_ms) + " ms";
  if (s.pause_after_first_batch) text += ", pause after the first batch";
  if (s.pause_between_batches) text += ", pause between batches";
  for (const std::uint32_t percent : s.pause_at_percent) text += ", pause at " + std::to_string(percent) + "%";
  if (s.include_protected) text += ", protected instances too";
  return text + ", on failure " + std::string(to_string(s.on_failure));
}

json Change::to_json() const {
  json out{{"action", action}, {"kind", kind}, {"name", name}, {"fields", fields}};
  if (rollout) {
    // The id exists once the rollout started: null on a dry run.
    out["id"] = rollout_id.empty() ? json(nullptr) : json(rollout_id);
    out["from"] = rollout->from;
    out["to"] = rollout->to;
    out["strategy"] = coordinator::to_json(rollout->strategy);
    out["summary"] = rollout->from + " -> " + rollout->to + " (" + describe(rollout->strategy) + ")";
  }
  return out;
}

std::string version_text(const std::string& launch_configuration, std::uint32_t version) {
  return launch_configuration + ":" + std::to_string(version);
}

struct PlannedConfig {
  LaunchConfiguration config;
  Change change;
};

// One spec kind of one group: what the file wants, and what exists now.
template <class Spec>
struct PlannedSpecs {
  bool listed = false;  // the group body has this list (absent: left as it is)
  std::map<std::string, Spec> wanted;  // by name
};

struct PlannedGroup {
  ScalingGroup group;
  bool exists = false;
  bool only_desired = false;  // an existing group whose desired alone changes
  Change change;
  std::optional<RolloutStrategy> rollout;  // the entry's `rollout`
  // A rollout starts after the specs: the group keeps the version it runs
  // until then, so that the rollout records where it started (its `from`,
  // where a rollback goes).
  bool start_rollout = false;
  std::string running_launch_configuration;
  std::uint32_t running_version = 0;
  bool only_version = false;  // with start_rollout: the version is all that changes
  PlannedSpecs<ScalingPolicy> policies;
  PlannedSpecs<ScheduledAction> schedules;
  PlannedSpecs<LifecycleHook> hooks;
  PlannedSpecs<NotificationTarget> notifications;
};

// Reads a spec list: each item through `parse`, names unique.
template <class Spec, class Parse>
tl::expected<void, Refusal> read_specs(const json& body, const char* key, const std::string& prefix,
                                       PlannedSpecs<Spec>& out, Parse parse) {
  if (!body.contains(key) || body[key].is_null()) return {};
  const std::string path = prefix + "." + key;
  if (!body[key].is_array()) return tl::make_unexpected(Refusal{path, "must be a list"});
  out.listed = true;
  for (std::size_t i = 0; i < body[key].size(); ++i) {
    const std::string item = path + "[" + std::to_string(i) + "]";
    auto spec = parse(body[key][i], item);
    if (!spec) return tl::make_unexpected(spec.error());
    const std::string& name = spec->first;
    if (out.wanted.count(name) != 0) return tl::make_unexpected(Refusal{item + ".name", "'" + name + "' is listed twice"});
    out.wanted.emplace(name, std::move(spec->second));
  }
  return {};
}

// Create / update / delete / unchanged for one kind of one group.
template <class Spec, class ToJson>
void diff_specs(const std::string& group, const char* kind, const PlannedSpecs<Spec>& planned,
                const std::map<SpecKey, Spec>& current, ToJson to_json_fn, std::vector<Change>& out) {
  if (!planned.listed) return;
  for (const auto& [name, spec] : planned.wanted) {
    const auto it = current.find({group, name});
    if (it == current.end()) {
      out.push_back(Change{"create", kind, group + "/" + name, {}, {}, {}});
      continue;
    }
    auto fields = changed_fields(to_json_fn(it->second), to_json_fn(spec));
    out.push_back(Change{fields.empty() ? "unchanged" : "update", kind, group + "/" + name, std::move(fields), {}, {}});
  }
  for (const auto& [key, spec] : current) {
    if (key.first == group && planned.wanted.count(key.second) == 0) {
      out.push_back(Change{"delete", kind, group + "/" + key.second, {}, {}, {}});
    }
  }
}

}  // namespace

void Server::register_apply_routes() {
  m_api->route("POST", "/v1/apply", [this](const ApiRequest& request) -> ApiResponse {
    const bool dry_run = request.params.count("dry_run") != 0 && request.params.at("dry_run") != "false" &&
                         request.params.at("dry_run") != "0";
    static const json kEmpty = json::object();
    const json& body = request.body ? *request.body : kEmpty;
    if (!body.is_object()) return refuse({"", "the body must be a JSON object {launch_configurations, groups}"});
    for (const auto& [key, value] : body.items()) {
      if (key != "launch_configurations" && key != "groups") return refuse({key, "unknown field"});
    }
    const auto list_of = [&](const char* key) -> tl::expected<json, Refusal> {
      if (!body.contains(key) || body[key].is_null()) return json::array();
      if (!body[key].is_array()) return tl::make_unexpected(Refusal{key, "must be a list"});
      return body[key];
    };
    const TimeMs now = now_ms();

    // ---- 1. parse and validate everything --------------------------------
    auto lc_items = list_of("launch_configurations");
    if (!lc_items) return refuse(lc_items.error());
    auto group_items = list_of("groups");
    if (!group_items) return refuse(group_items.error());

    std::vector<PlannedConfig> configs;
    std::map<std::string, std::uint32_t> version_after;  // LC id -> the version groups will use
    for (std::size_t i = 0; i < lc_items->size(); ++i) {
      const std::string path = "launch_configurations[" + std::to_string(i) + "]";
      auto config = launch_configuration_from_json((*lc_items)[i]);
      if (!config) return refuse(refusal_at(path, config.error()));
      if (auto valid = validate(*config); !valid) return refuse({path, valid.error().message});
      if (version_after.count(config->id) != 0) return refuse({path + ".id", "'" + config->id + "' is listed twice"});
      PlannedConfig planned{*config, Change{"create", "launch_configuration", config->id, {}, {}, {}}};
      auto latest = m_store->get_latest_launch_configuration(config->id);
      if (latest) {
        const auto view = [](const LaunchConfiguration& c) {
          json j = to_json(c);
          return json{{"command", j["command"]}, {"port", j["port"]}, {"env", j["env"]},
                      {"env_files", j["env_files"]}, {"agent", j["agent"]}, {"hourly_price", j["hourly_price"]}};
        };
        planned.change.fields = changed_fields(view(*latest), view(*config));
        planned.change.action = planned.change.fields.empty() ? "unchanged" : "update";
        version_after[config->id] = planned.change.fields.empty() ? latest->version : latest->version + 1;
      } else if (latest.error().kind == store::StoreError::Kind::NotFound) {
        version_after[config->id] = 1;
      } else {
        return api_error(500, latest.error().message);
      }
      configs.push_back(std::move(planned));
    }

    std::vector<PlannedGroup> groups;
    std::set<std::string> group_names;
    std::vector<Change> rollouts;    // rollouts to start, in the order of `groups`
    std::vector<std::string> notes;  // running instances an apply leaves on their old version
    for (std::size_t j = 0; j < group_items->size(); ++j) {
      const std::string path = "groups[" + std::to_string(j) + "]";
      const json& item = (*group_items)[j];
      if (!item.is_object()) return refuse({path, "must be an object"});
      json group_body = item;
      for (const char* key : kSpecKeys) group_body.erase(key);
      group_body.erase(kRolloutKey);
      PlannedGroup planned;
      const std::string name = item.contains("name") && item["name"].is_string() ? item["name"].get<std::string>() : "";
      const ScalingGroup* current = name.empty() ? nullptr : m_fleet->group(name);
      if (current == nullptr) {
        auto group = group_from_json(group_body);
        if (!group) return refuse(refusal_at(path, group.error()));
        planned.group = *group;
        planned.group.created_ms = planned.group.updated_ms = now;
      } else {
        json patch = group_body;
        patch.erase("name");
        auto group = patch_group(*current, patch);
        if (!group) return refuse(refusal_at(path, group.error()));
        planned.group = *group;
        planned.exists = true;
        // A file that leaves desired out keeps the running count, within
        // the (possibly new) bounds.
        if (!group_body.contains("desired")) {
          planned.group.desired = std::clamp(current->desired, planned.group.min, std::max(planned.group.min, planned.group.max));
        }
      }
      if (!is_valid_name(planned.group.name)) return refuse({path + ".name", "must be 1..128 bytes of [A-Za-z0-9._:-]"});
      if (!group_names.insert(planned.group.name).second) {
        return refuse({path + ".name", "'" + planned.group.name + "' is listed twice"});
      }
      // The launch configuration: from this file (its version after the
      // apply), else the stored one — the group's own version while its id
      // does not change, the latest when it does.
      const std::string& lc_id = planned.group.launch_configuration_id;
      if (const auto it = version_after.find(lc_id); it != version_after.end()) {
        planned.group.launch_configuration_version = it->second;
      } else if (!(current != nullptr && current->launch_configuration_id == lc_id)) {
        auto latest = m_store->get_latest_launch_configuration(lc_id);
        if (!latest) return refuse({path + ".launch_configuration", "no launch configuration '" + lc_id + "'"});
        planned.group.launch_configuration_version = latest->version;
      }
      if (auto valid = validate(planned.group); !valid) return refuse({path, valid.error().message});
      if (!planned.group.lb.backend.empty()) {
        bool known = false;
        for (const auto& backend : m_config.load_balancer.backends) known = known || backend.name == planned.group.lb.backend;
        if (!known) {
          return refuse({path + ".load_balancer.backend",
                         "no backend '" + planned.group.lb.backend + "' in the coordinator's configuration"});
        }
      }
      const std::string& g = planned.group.name;
      auto policies = read_specs(item, "policies", path, planned.policies,
                                 [&](const json& spec, const std::string& at) -> tl::expected<std::pair<std::string, ScalingPolicy>, Refusal> {
                                   auto policy = policy_from_json(spec, g);
                                   if (!policy) return tl::make_unexpected(refusal_at(at, policy.error()));
                                   if (auto check = check_policy_metric(*policy); !check) {
                                     return tl::make_unexpected(refusal_at(at, check.error()));
                                   }
                                   return std::pair{policy_name(*policy), *policy};
                                 });
      if (!policies) return refuse(policies.error());
      auto schedules = read_specs(item, "schedules", path, planned.schedules,
                                  [&](const json& spec, const std::string& at) -> tl::expected<std::pair<std::string, ScheduledAction>, Refusal> {
                                    auto action = scheduled_action_from_json(spec, g);
                                    if (!action) return tl::make_unexpected(refusal_at(at, action.error()));
                                    if (auto check = check_schedule(*action); !check) {
                                      return tl::make_unexpected(refusal_at(at, check.error()));
                                    }
                                    return std::pair{action->name, *action};
                                  });
      if (!schedules) return refuse(schedules.error());
      auto hooks = read_specs(item, "hooks", path, planned.hooks,
                              [&](const json& spec, const std::string& at) -> tl::expected<std::pair<std::string, LifecycleHook>, Refusal> {
                                auto hook = lifecycle_hook_from_json(spec, g);
                                if (!hook) return tl::make_unexpected(refusal_at(at, hook.error()));
                                return std::pair{hook->name, *hook};
                              });
      if (!hooks) return refuse(hooks.error());
      auto notifications = read_specs(item, "notifications", path, planned.notifications,
                                      [&](const json& spec, const std::string& at) -> tl::expected<std::pair<std::string, NotificationTarget>, Refusal> {
                                        auto target = notification_target_from_json(spec, g);
                                        if (!target) return tl::make_unexpected(refusal_at(at, target.error()));
                                        return std::pair{target->name, *target};
                                      });
      if (!notifications) return refuse(notifications.error());
      // The rollout's strategy, read as POST /v1/groups/{g}/rollouts reads
      // it; what to roll out is the group entry's launch configuration.
      if (item.contains(kRolloutKey) && !item[kRolloutKey].is_null()) {
        const std::string at = path + "." + kRolloutKey;
        const json& strategy = item[kRolloutKey];
        if (!strategy.is_object()) return refuse({at, "must be an object of rollout options (docs/rollout.md)"});
        for (const char* key : {"launch_configuration", "version"}) {
          if (strategy.contains(key)) {
            return refuse({at + "." + key,
                           "not allowed here: the group's launch_configuration (its version after the apply) is "
                           "what is rolled out"});
          }
        }
        auto parsed = parse_rollout_request(strategy);
        if (!parsed) return refuse({join_path(at, parsed.error().field), parsed.error().message});
        planned.rollout = std::move(parsed->strategy);
      }

      // ---- 2. the group's diff ----
      if (current == nullptr) {
        planned.change = Change{"create", "group", g, {}, {}, {}};
      } else {
        auto fields = changed_fields(to_json(*current), to_json(planned.group), {"created_ms", "updated_ms"});
        planned.only_desired = fields.size() == 1 && fields[0] == "desired";
        planned.change = Change{fields.empty() ? "unchanged" : "update", "group", g, std::move(fields), {}, {}};
        const bool new_version = current->launch_configuration_id != planned.group.launch_configuration_id ||
                                 current->launch_configuration_version != planned.group.launch_configuration_version;
        if (new_version) {
          // Instances that count toward desired and run another version than
          // the one the group will launch: what a rollout would replace.
          const Rollout candidate = new_rollout("", *current, planned.group.launch_configuration_id,
                                                planned.group.launch_configuration_version, {}, now);
          const std::uint32_t old_instances = m_fleet->rollout_progress(g, candidate).old_instances;
          const std::string from = version_text(current->launch_configuration_id, current->launch_configuration_version);
          const std::string to =
              version_text(planned.group.launch_configuration_id, planned.group.launch_configuration_version);
          // While a rollout runs, the version the group launches is the
          // rollout's: another one, with or without `rollout`, would be
          // undone at the rollout's next step.
          if (const Rollout* running = m_fleet->rollout(g); running != nullptr) {
            return refuse({planned.rollout ? path + "." + kRolloutKey : path + ".launch_configuration",
                           "group '" + g + "' has rollout " + running->id + " " +
                               std::string(to_string(running->state)) +
                               ": cancel it or wait for it to finish before applying " + to},
                          409);
          }
          if (planned.rollout) {
            if (old_instances > 0) {
              planned.start_rollout = true;
              planned.running_launch_configuration = current->launch_configuration_id;
              planned.running_version = current->launch_configuration_version;
              ScalingGroup kept = planned.group;
              kept.launch_configuration_id = current->launch_configuration_id;
              kept.launch_configuration_version = current->launch_configuration_version;
              auto rest = changed_fields(to_json(*current), to_json(kept), {"created_ms", "updated_ms"});
              planned.only_version = rest.empty();
              planned.only_desired = rest.size() == 1 && rest[0] == "desired";
              rollouts.push_back(Change{"start", "rollout", g, {}, PlannedRollout{from, to, *planned.rollout}, {}});
            }
          } else if (old_instances > 0) {
            notes.push_back(g + ": " + std::to_string(old_instances) + " running instance(s) keep " + from +
                            "; only new instances start " + to + ". To replace them, add `rollout:` to " + path +
                            " or run `tidectl rollout start " + g + "`");
          }
        }
      }
      groups.push_back(std::move(planned));
    }

    // ---- 2. the full list of changes ---------------------------------------
    std::vector<Change> changes;
    for (const auto& planned : configs) changes.push_back(planned.change);
    for (const auto& planned : groups) changes.push_back(planned.change);
    for (const auto& planned : groups) {
      const std::string& g = planned.group.name;
      diff_specs(g, "policy", planned.policies, m_specs.policies, [](const ScalingPolicy& p) { return to_json(p); }, changes);
      diff_specs(g, "schedule", planned.schedules, m_specs.schedules, [](const ScheduledAction& a) { return to_json(a); }, changes);
      diff_specs(g, "hook", planned.hooks, m_specs.hooks, [](const LifecycleHook& h) { return to_json(h); }, changes);
      diff_specs(g, "notification", planned.notifications, m_specs.notifications,
                 [](const NotificationTarget& t) { return to_json(t); }, changes);
    }
    changes.insert(changes.end(), rollouts.begin(), rollouts.end());
    const auto answer = [&](int status, bool applied, std::size_t done, std::string error) {
      json list = json::array();
      for (const auto& change : changes) list.push_back(change.to_json());
      ApiResponse response;
      response.status = status;
      response.body = json{{"changes", list}, {"applied", applied}, {"dry_run", dry_run}, {"notes", notes}};
      if (!error.empty()) {
        json done_list = json::array();
        for (std::size_t i = 0; i < done && i < changes.size(); ++i) {
          if (changes[i].action != "unchanged") done_list.push_back(changes[i].to_json());
        }
        response.body["error"] = std::move(error);
        response.body["applied_before_error"] = done_list;
      }
      return response;
    };
    if (dry_run) return answer(200, false, 0, "");

    // ---- 3. apply, in the order of `changes` ------------------------------
    // Each step returns an error text; `done` counts the changes behind us.
    std::size_t done = 0;
    const auto fail = [&](const std::string& what, const std::string& message) {
      spdlog::error("apply: {} failed after {} change(s): {}", what, done, message);
      return answer(500, false, done, what + ": " + message);
    };
    for (auto& planned : configs) {
      if (planned.change.action != "unchanged") {
        LaunchConfiguration config = planned.config;
        config.created_ms = now;
        auto stored = m_store->create_launch_configuration_version(config);
        if (!stored) return fail("launch configuration " + config.id, stored.error().message);
        if (auto put = m_fleet->put_launch_configuration(*stored); !put) {
          return fail("launch configuration " + config.id, put.error().message);
        }
      }
      ++done;
    }
    for (auto& planned : groups) {
      const std::string what = "group " + planned.group.name;
      if (planned.change.action == "create") {
        if (auto inserted = m_store->insert_group(planned.group); !inserted) return fail(what, inserted.error().message);
        std::vector<Command> out;
        if (auto put = m_fleet->put_group(planned.group, now, out); !put) return fail(what, put.error().message);
        execute(std::move(out));
      } else if (planned.change.action == "update" && !planned.only_version) {
        ScalingGroup group = planned.group;
        group.updated_ms = now;
        if (planned.start_rollout) {
          group.launch_configuration_id = planned.running_launch_configuration;
          group.launch_configuration_version = planned.running_version;
        }
        std::vector<Command> out;
        if (planned.only_desired) {
          if (auto set = m_fleet->set_desired(group.name, group.desired, "user request (tidectl apply)", now, out); !set) {
            return fail(what, set.error().message);
          }
        } else {
          if (auto updated = m_store->update_group(group); !updated) return fail(what, updated.error().message);
          if (auto put = m_fleet->put_group(group, now, out); !put) return fail(what, put.error().message);
        }
        execute(std::move(out));
      }
      ++done;
    }
    // Specs, in the same order diff_specs listed them.
    for (auto& planned : groups) {
      const std::string& g = planned.group.name;
      // policies
      if (planned.policies.listed) {
        for (const auto& [name, policy] : planned.policies.wanted) {
          if (changes[done].action != "unchanged") {
            if (auto stored = m_store->put_policy(policy, now); !stored) return fail("policy " + g + "/" + name, stored.error().message);
            put_policy_in_memory(policy);
          }
          ++done;
        }
        std::vector<std::string> gone;
        for (const auto& [key, policy] : m_specs.policies) {
          if (key.first == g && planned.policies.wanted.count(key.second) == 0) gone.push_back(key.second);
        }
        for (const auto& name : gone) {
          if (auto deleted = m_store->delete_spec(store::SpecKind::Policy, g, name); !deleted) {
            return fail("policy " + g + "/" + name, deleted.error().message);
          }
          remove_policy_in_memory(g, name);
          ++done;
        }
      }
      // scheduled actions: a new or changed action counts from now, as PUT does
      if (planned.schedules.listed) {
        for (auto [name, action] : planned.schedules.wanted) {
          if (changes[done].action != "unchanged") {
            action.last_fired_ms = now;
            if (auto stored = m_store->put_scheduled_action(action, now); !stored) {
              return fail("schedule " + g + "/" + name, stored.error().message);
            }
            m_specs.schedules[{g, name}] = action;
          }
          ++done;
        }
        std::vector<std::string> gone;
        for (const auto& [key, action] : m_specs.schedules) {
          if (key.first == g && planned.schedules.wanted.count(key.second) == 0) gone.push_back(key.second);
        }
        for (const auto& name : gone) {
          if (auto deleted = m_store->delete_spec(store::SpecKind::ScheduledAction, g, name); !deleted) {
            return fail("schedule " + g + "/" + name, deleted.error().message);
          }
          m_specs.schedules.erase({g, name});
          ++done;
        }
      }
      if (planned.hooks.listed) {
        bool touched = false;
        for (const auto& [name, hook] : planned.hooks.wanted) {
          if (changes[done].action != "unchanged") {
            if (auto stored = m_store->put_lifecycle_hook(hook, now); !stored) {
              return fail("hook " + g + "/" + name, stored.error().message);
            }
            m_specs.hooks[{g, name}] = hook;
            touched = true;
          }
          ++done;
        }
        std::vector<std::string> gone;
        for (const auto& [key, hook] : m_specs.hooks) {
          if (key.first == g && planned.hooks.wanted.count(key.second) == 0) gone.push_back(key.second);
        }
        for (const auto& name : gone) {
          if (auto deleted = m_store->delete_spec(store::SpecKind::LifecycleHook, g, name); !deleted) {
            return fail("hook " + g + "/" + name, deleted.error().message);
          }
          m_specs.hooks.erase({g, name});
          touched = true;
          ++done;
        }
        if (touched) hooks_changed(g);
      }
      if (planned.notifications.listed) {
        for (const auto& [name, target] : planned.notifications.wanted) {
          if (changes[done].action != "unchanged") {
            if (auto stored = m_store->put_notification_target(target, now); !stored) {
              return fail("notification " + g + "/" + name, stored.error().message);
            }
            m_specs.notifications[{g, name}] = target;
          }
          ++done;
        }
        std::vector<std::string> gone;
        for (const auto& [key, target] : m_specs.notifications) {
          if (key.first == g && planned.notifications.wanted.count(key.second) == 0) gone.push_back(key.second);
        }
        for (const auto& name : gone) {
          if (auto deleted = m_store->delete_spec(store::SpecKind::NotificationTarget, g, name); !deleted) {
            return fail("notification " + g + "/" + name, deleted.error().message);
          }
          m_specs.notifications.erase({g, name});
          ++done;
        }
      }
    }
    // Rollouts last: the group's hooks and notification targets are in
    // place before the first new instance launches.
    for (auto& planned : groups) {
      if (!planned.start_rollout) continue;
      Change& change = changes[done];
      assert(change.kind == "rollout" && change.name == planned.group.name);
      std::vector<Command> out;
      auto started = m_fleet->start_rollout(planned.group.name, new_rollout_id(), planned.group.launch_configuration_id,
                                            planned.group.launch_configuration_version, *planned.rollout, now, out);
      if (!started) return fail("rollout of group " + planned.group.name, started.error().message);
      execute(std::move(out));
      change.rollout_id = started->id;
      spdlog::info("apply: rollout {} of group {} started: {} -> {}", started->id, planned.group.name,
                   change.rollout->from, change.rollout->to);
      ++done;
    }
    std::size_t changed = 0;
    for (const auto& change : changes) changed += change.action != "unchanged" ? 1U : 0U;
    spdlog::info("apply: {} change(s) applied", changed);
    return answer(200, true, done, "");
  });
}

}  // namespace tide::coordinator
