// tidectl policy | schedule put/list/show/delete | hook | notification |
// lifecycle: the group specs of docs/api.md ("Policies, schedules, hooks and
// notifications"), one HTTP request each.
#include <cmath>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <date/tz.h>

#include "coordinator/core/policy_model.hpp"
#include "coordinator/tidectl/client.hpp"
#include "coordinator/tidectl/commands.hpp"
#include "coordinator/tidectl/schedule_preview.hpp"
#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {

using nlohmann::json;

tl::expected<std::int64_t, std::string> parse_point_in_time(std::string_view text, std::int64_t now_ms) {
  if (const auto ago = coordinator::parse_duration(text); ago) return now_ms - *ago;
  const date::time_zone* local = nullptr;
  try {
    local = date::current_zone();
  } catch (const std::exception&) {
    local = date::locate_zone("UTC");
  }
  auto at = parse_preview_time(text, *local);
  if (!at) return tl::make_unexpected("'" + std::string(text) + "' is neither a duration ago (1h, 30m) nor a time: " + at.error());
  return *at;
}

tl::expected<json, std::string> parse_rate_limit(std::string_view text) {
  const auto slash = text.find('/');
  const auto bad = [&] { return tl::make_unexpected("'" + std::string(text) + "' is not N/DURATION (e.g. 4/60s)"); };
  if (slash == std::string_view::npos || slash == 0) return bad();
  const std::string count(text.substr(0, slash));
  if (count.find_first_not_of("0123456789") != std::string::npos || count.size() > 6) return bad();
  auto period = parse_duration_ms(text.substr(slash + 1));
  if (!period) return tl::make_unexpected(period.error());
  return json{{"max_instances", std::stoll(count)}, {"period_ms", *period}};
}

std::string time_in_zone(std::int64_t ms, const std::string& zone) {
  const date::sys_seconds t{std::chrono::seconds{ms / 1'000}};
  try {
    return date::format("%Y-%m-%d %H:%M %Z", date::make_zoned(zone, t));
  } catch (const std::exception&) {
    return date::format("%Y-%m-%d %H:%M UTC", t);
  }
}

namespace {

std::string enc(const std::string& text) { return url_encode(text); }

void render_object(const json& body) { print_object(std::cout, body); }

void render_message(const json& body) {
  if (body.is_object() && body.contains("message")) {
    std::cout << body["message"].get<std::string>() << '\n';
  } else {
    render_object(body);
  }
}

std::function<void(const json&)> render_list(std::string key, std::vector<Column> columns) {
  return [key = std::move(key), columns = std::move(columns)](const json& body) {
    print_table(std::cout, columns, body.is_object() ? body.value(key, json::array()) : body);
  };
}

// A duration flag's value in ms, or a usage error naming the flag.
std::int64_t duration_flag(const std::string& flag, const std::string& text) {
  auto ms = parse_duration_ms(text);
  if (!ms) throw CLI::ValidationError(flag, ms.error());
  return *ms;
}

std::string number_text(const json& value) {
  if (!value.is_number()) return to_text(value);
  const double number = value.get<double>();
  if (std::floor(number) == number && std::fabs(number) < 1e15) return std::to_string(static_cast<std::int64_t>(number));
  return to_text(value);
}

// The policy's condition and effect in one line each.
std::string policy_condition(const json& p) {
  // A Prometheus query's value is marked as such; the query itself is in `show`.
  const std::string metric = p.value("metric", "?") + (p.contains("query") ? " (prometheus)" : "");
  if (p.value("type", "alarm") == "target_tracking") {
    const double tolerance = p.value("tolerance", 0.1) * 100.0;
    return metric + " average near " + number_text(p["target"]) + " (+/-" +
           number_text(json(std::round(tolerance))) + " %, over " + duration_text(p.value("window_ms", 0LL)) + ")";
  }
  return metric + " " + p.value("statistic", "average") + " " + p.value("comparison", "?") + " " +
         number_text(p["threshold"]) + " for " + std::to_string(p.value("evaluation_periods", 1)) + " x " +
         duration_text(p.value("period_ms", 0LL));
}

std::string policy_effect(const json& p) {
  if (p.value("type", "alarm") == "target_tracking") {
    return p.value("disable_scale_in", false) ? "scale out only" : "scale out and in";
  }
  const std::string type = p.value("adjustment_type", "change");
  const std::int64_t adjustment = p.value("adjustment", 0LL);
  if (type == "exact") return "set " + std::to_string(adjustment);
  std::string sign = adjustment >= 0 ? "+" : "";
  return sign + std::to_string(adjustment) + (type == "percent" ? " %" : "");
}

std::string cooldown_text(const json& p) {
  if (p.value("type", "alarm") == "target_tracking") return "-";
  if (!p.contains("cooldown_ms") || p["cooldown_ms"].is_null()) return "group default";
  return duration_text(p["cooldown_ms"].get<std::int64_t>());
}

// `tidectl <kind> list|show|delete <group> [name]`, the same for every kind.
void add_list_show_delete(CLI::App& parent, Request& request, const std::string& kind, const std::string& noun,
                          std::function<void(const json&)> render) {
  static std::vector<std::unique_ptr<std::pair<std::string, std::string>>> storage;
  storage.push_back(std::make_unique<std::pair<std::string, std::string>>());
  auto& args = *storage.back();
  auto* list = parent.add_subcommand("list", "list a group's " + noun + "s");
  list->add_option("group", args.first)->required();
  list->callback([&request, &args, kind, render] {
    request = Request{"GET", "/v1/groups/" + enc(args.first) + "/" + kind, std::nullopt, render, nullptr};
  });
  auto* show = parent.add_subcommand("show", "show one " + noun);
  show->add_option("group", args.first)->required();
  show->add_option("name", args.second)->required();
  show->callback([&request, &args, kind] {
    request = Request{"GET", "/v1/groups/" + enc(args.first) + "/" + kind + "/" + enc(args.second), std::nullopt,
                      render_object, nullptr};
  });
  auto* del = parent.add_subcommand("delete", "delete one " + noun);
  del->add_option("group", args.first)->required();
  del->add_option("name", args.second)->required();
  del->callback([&request, &args, kind] {
    request = Request{"DELETE", "/v1/groups/" + enc(args.first) + "/" + kind + "/" + enc(args.second), std::nullopt,
                      render_message, nullptr};
  });
}

void add_policy(CLI::App& app, Request& request) {
  auto* policy = app.add_subcommand("policy", "scaling policies (alarm and target tracking)")->require_subcommand(1);

  static std::string group, name, metric, query, statistic = "average", comparison, period = "60s",
                     adjustment_type = "change", cooldown;
  static double threshold = 0.0;
  static int periods = 1, adjustment = 0;
  static std::optional<int> min_magnitude;
  auto* put = policy->add_subcommand("put", "create or replace an alarm (simple scaling) policy");
  put->add_option("group", group)->required();
  put->add_option("name", name)->required();
  put->add_option("--metric", metric,
                  "cpu, memory, load1, network_in, network_out, tcp_established, a load-balancer metric "
                  "(requests_per_instance, response_time_ms, queue, http_5xx_rate, sessions_per_instance), a custom "
                  "metric, or the name of --query's value")
      ->required();
  put->add_option("--query", query,
                  "a PromQL instant query whose value is the metric (needs prometheus.url in the coordinator's "
                  "configuration); it must return one number");
  put->add_option("--statistic", statistic, "over the group's instances")
      ->check(CLI::IsMember({"average", "maximum", "minimum"}))
      ->capture_default_str();
  put->add_option("--comparison", comparison, "'>', '>=', '<', '<=', '==' or '!=' (quote it)")
      ->required()
      ->check(CLI::IsMember({">", ">=", "<", "<=", "==", "!="}));
  put->add_option("--threshold", threshold)->required();
  put->add_option("--period", period, "length of one evaluation period (whole seconds: 10s, 1m)")->capture_default_str();
  put->add_option("--periods", periods, "consecutive periods the condition must hold")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  put->add_option("--adjustment", adjustment, "instances to add (negative: remove), the exact count, or a percent")
      ->required();
  put->add_option("--adjustment-type", adjustment_type)
      ->check(CLI::IsMember({"change", "exact", "percent"}))
      ->capture_default_str();
  put->add_option("--min-magnitude", min_magnitude, "percent only: move at least this many instances")
      ->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
  put->add_option("--cooldown", cooldown, "wait after the policy fires (default: the group's default cooldown)");
  put->callback([&request] {
    json body{{"type", "alarm"},
              {"metric", metric},
              {"statistic", statistic},
              {"comparison", comparison},
              {"threshold", threshold},
              {"period_ms", duration_flag("--period", period)},
              {"evaluation_periods", periods},
              {"adjustment_type", adjustment_type},
              {"adjustment", adjustment}};
    if (min_magnitude) body["min_adjustment_magnitude"] = *min_magnitude;
    if (!cooldown.empty()) body["cooldown_ms"] = duration_flag("--cooldown", cooldown);
    if (!query.empty()) body["query"] = query;
    request = Request{"PUT", "/v1/groups/" + enc(group) + "/policies/" + enc(name), body, render_object, nullptr};
  });

  static double target = 0.0;
  static std::optional<double> tolerance;
  static std::string window, scale_out_window, stabilization, max_out, max_in;
  static bool disable_scale_in = false;
  auto* target_put = policy->add_subcommand("put-target", "create or replace a target-tracking policy");
  target_put->add_option("group", group)->required();
  target_put->add_option("name", name)->required();
  target_put->add_option("--metric", metric, "the group metric to keep near the target (per instance)")->required();
  target_put->add_option("--query", query,
                         "a PromQL instant query whose value is the metric, per instance (e.g. "
                         "sum(rate(x[1m])) / count(up{job=\"app\"} == 1)); needs prometheus.url");
  target_put->add_option("--target", target, "the value to keep the metric near")->required();
  target_put->add_option("--tolerance", tolerance, "no change while |value/target - 1| <= this (default 0.1)");
  target_put->add_option("--window", window, "the metric is averaged over this window (default 60s)");
  target_put->add_option("--scale-out-window", scale_out_window,
                         "also scale out on the average of this most recent span (e.g. 2s): a step in load "
                         "reaches its size in one move (default: off)");
  target_put->add_option("--scale-in-stabilization", stabilization, "scale in only to the highest recommendation of this window (default 300s)");
  target_put->add_flag("--disable-scale-in", disable_scale_in, "only ever scale out");
  target_put->add_option("--max-scale-out", max_out, "rate limit, N/DURATION (e.g. 4/60s)");
  target_put->add_option("--max-scale-in", max_in, "rate limit, N/DURATION (e.g. 1/60s)");
  target_put->callback([&request] {
    json body{{"type", "target_tracking"}, {"metric", metric}, {"target", target}, {"disable_scale_in", disable_scale_in}};
    if (tolerance) body["tolerance"] = *tolerance;
    if (!query.empty()) body["query"] = query;
    if (!window.empty()) body["window_ms"] = duration_flag("--window", window);
    if (!scale_out_window.empty()) body["scale_out_window_ms"] = duration_flag("--scale-out-window", scale_out_window);
    if (!stabilization.empty()) body["scale_in_stabilization_ms"] = duration_flag("--scale-in-stabilization", stabilization);
    for (const auto& [flag, text, key] : {std::tuple{"--max-scale-out", &max_out, "scale_out_limit"},
                                          std::tuple{"--max-scale-in", &max_in, "scale_in_limit"}}) {
      if (text->empty()) continue;
      auto limit = parse_rate_limit(*text);
      if (!limit) throw CLI::ValidationError(flag, limit.error());
      body[key] = *limit;
    }
    request = Request{"PUT", "/v1/groups/" + enc(group) + "/policies/" + enc(name), body, render_object, nullptr};
  });

  add_list_show_delete(*policy, request, "policies", "policy",
                       render_list("policies", {field("NAME", "name"), field("TYPE", "type"),
                                                Column{"CONDITION", policy_condition}, Column{"ADJUSTMENT", policy_effect},
                                                Column{"COOLDOWN", cooldown_text}, field("ENABLED", "enabled")}));

  static bool no_honour = false;
  auto* execute = policy->add_subcommand("execute", "run a simple policy's adjustment now");
  execute->add_option("group", group)->required();
  execute->add_option("name", name)->required();
  execute->add_flag("--no-honour-cooldown", no_honour, "run even while the group is in its cooldown");
  execute->callback([&request] {
    request = Request{"POST", "/v1/groups/" + enc(group) + "/policies/" + enc(name) + "/execute",
                      json{{"honour_cooldown", !no_honour}},
                      [](const json& body) {
                        std::cout << body.value("group", "") << ": desired " << to_text(body.value("from_desired", json()))
                                  << " -> " << to_text(body.value("to_desired", json())) << " (" << body.value("cause", "")
                                  << ")\n";
                      },
                      nullptr};
  });
}

void add_schedule(CLI::App& schedule, Request& request, std::int64_t now_ms) {
  static std::string group, name, cron, zone = "UTC", start, end;
  static std::optional<int> min, max, desired;
  auto* put = schedule.add_subcommand("put", "create or replace a scheduled action");
  put->add_option("group", group)->required();
  put->add_option("name", name)->required();
  put->add_option("--cron", cron, "5-field cron expression, quoted: '0 11 * * *' (none: fire once at --start)");
  put->add_option("--tz", zone, "IANA time zone of the cron expression and of --start/--end")->capture_default_str();
  put->add_option("--start", start, "not before this time: ISO 8601 (local to --tz unless it ends in Z or +08:00) or epoch seconds");
  put->add_option("--end", end, "not after this time");
  put->add_option("--min", min, "set the group's minimum size")->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
  put->add_option("--max", max, "set the group's maximum size")->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
  put->add_option("--desired", desired, "set the group's desired capacity")->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
  put->callback([&request, now_ms, put] {
    if (put->count("--tz") == 0) {
      std::cerr << "tidectl: note: no --tz given: the cron expression and --start/--end are in " << zone
                << " (tidectl schedule put ... --tz Asia/Shanghai for another zone)\n";
    }
    if (cron.empty() && start.empty()) throw CLI::ValidationError("schedule put", "a one-shot action (no --cron) needs --start");
    if (!min && !max && !desired) throw CLI::ValidationError("schedule put", "give at least one of --min, --max, --desired");
    const date::time_zone* tz = nullptr;
    try {
      tz = date::locate_zone(zone);
    } catch (const std::exception&) {
      throw CLI::ValidationError("--tz", "unknown time zone '" + zone + "'");
    }
    json body{{"time_zone", zone}};
    if (!cron.empty()) body["cron"] = cron;
    for (const auto& [flag, text, key] : {std::tuple{"--start", &start, "start_ms"}, std::tuple{"--end", &end, "end_ms"}}) {
      if (text->empty()) continue;
      auto ms = parse_preview_time(*text, *tz);
      if (!ms) throw CLI::ValidationError(flag, ms.error());
      body[key] = *ms;
    }
    if (min) body["min"] = *min;
    if (max) body["max"] = *max;
    if (desired) body["desired"] = *desired;
    (void)now_ms;
    request = Request{"PUT", "/v1/groups/" + enc(group) + "/schedules/" + enc(name), body, render_object, nullptr};
  });
  const auto zoned = [](const char* key) {
    return [key](const json& row) {
      const json& value = row.contains(key) ? row[key] : json();
      if (!value.is_number()) return std::string("-");
      return time_in_zone(value.get<std::int64_t>(), row.value("time_zone", "UTC"));
    };
  };
  add_list_show_delete(
      schedule, request, "schedules", "scheduled action",
      render_list("schedules", {field("NAME", "name"), Column{"CRON", [](const json& row) {
                                  const std::string c = row.value("cron", "");
                                  return c.empty() ? std::string("(once)") : c;
                                }},
                                field("ZONE", "time_zone"), field("MIN", "min"), field("MAX", "max"),
                                field("DESIRED", "desired"), Column{"NEXT FIRE", zoned("next_fire_ms")}}));
}

void add_hook(CLI::App& app, Request& request) {
  auto* hook = app.add_subcommand("hook", "lifecycle hooks")->require_subcommand(1);
  static std::string group, name, transition, timeout, default_result, metadata, agent_script;
  auto* put = hook->add_subcommand("put", "create or replace a lifecycle hook");
  put->add_option("group", group)->required();
  put->add_option("name", name)->required();
  put->add_option("--transition", transition, "launching or terminating")
      ->required()
      ->check(CLI::IsMember({"launching", "terminating"}));
  put->add_option("--timeout", timeout, "heartbeat timeout, 30s..2h (default 300s)");
  put->add_option("--default-result", default_result, "applied on time-out: continue or abandon (default continue)")
      ->check(CLI::IsMember({"continue", "abandon"}));
  put->add_option("--metadata", metadata, "text passed on in notifications");
  put->add_option("--agent-script", agent_script, "the agent runs its hook script of this name; exit 0 = continue");
  put->callback([&request] {
    json body{{"transition", transition}};
    if (!timeout.empty()) body["heartbeat_timeout_ms"] = duration_flag("--timeout", timeout);
    if (!default_result.empty()) body["default_result"] = default_result;
    if (!metadata.empty()) body["notification_metadata"] = metadata;
    if (!agent_script.empty()) body["agent_script"] = agent_script;
    request = Request{"PUT", "/v1/groups/" + enc(group) + "/hooks/" + enc(name), body, render_object, nullptr};
  });
  add_list_show_delete(*hook, request, "hooks", "lifecycle hook",
                       render_list("hooks", {field("NAME", "name"), field("TRANSITION", "transition"),
                                             Column{"TIMEOUT", [](const json& row) {
                                                      return duration_text(row.value("heartbeat_timeout_ms", 0LL));
                                                    }},
                                             field("DEFAULT RESULT", "default_result"),
                                             field("AGENT SCRIPT", "agent_script")}));
}

void add_lifecycle(CLI::App& app, Request& request) {
  auto* lifecycle = app.add_subcommand("lifecycle", "complete or extend an instance's pending lifecycle hook")
                        ->require_subcommand(1);
  static std::string id, hook, token, result;
  const auto body = [] {
    json b = json::object();
    if (!hook.empty()) b["hook"] = hook;
    if (!token.empty()) b["token"] = token;
    if (!result.empty()) b["result"] = result;
    return b;
  };
  auto* complete = lifecycle->add_subcommand("complete", "finish the hook the instance waits on");
  complete->add_option("instance", id, "instance id")->required();
  complete->add_option("--hook", hook, "the hook's name (default: the one it waits on)");
  complete->add_option("--token", token, "the hook action's token, from the notification");
  complete->add_option("--result", result, "continue or abandon")->required()->check(CLI::IsMember({"continue", "abandon"}));
  complete->callback([&request, body] {
    request = Request{"POST", "/v1/instances/" + enc(id) + "/lifecycle/complete", body(), render_object, nullptr};
  });
  static std::string list_group;
  auto* list = lifecycle->add_subcommand("list", "instances a lifecycle hook holds, with their tokens and deadlines");
  list->add_option("group", list_group)->required();
  list->callback([&request] {
    const auto time_of = [](const char* key) {
      return [key](const json& row) { return time_in_zone(row.value(key, std::int64_t{0}), "UTC"); };
    };
    request = Request{"GET", "/v1/groups/" + enc(list_group) + "/lifecycle-actions", std::nullopt,
                      render_list("lifecycle_actions",
                                  {field("INSTANCE", "instance_id"), field("HOOK", "hook"),
                                   field("TRANSITION", "transition"), field("TOKEN", "token"),
                                   Column{"DEADLINE (UTC)", time_of("deadline_ms")},
                                   field("ON TIME-OUT", "default_result")}),
                      nullptr};
  });
  auto* heartbeat = lifecycle->add_subcommand("heartbeat", "restart the hook's heartbeat timeout");
  heartbeat->add_option("instance", id, "instance id")->required();
  heartbeat->add_option("--hook", hook, "the hook's name (default: the one it waits on)");
  heartbeat->add_option("--token", token, "the hook action's token");
  heartbeat->callback([&request, body] {
    result.clear();
    request = Request{"POST", "/v1/instances/" + enc(id) + "/lifecycle/heartbeat", body(), render_object, nullptr};
  });
}

void add_notification(CLI::App& app, Request& request) {
  auto* notification = app.add_subcommand("notification", "webhook notification targets")->require_subcommand(1);
  static std::string group, name, url, format = "generic";
  static std::vector<std::string> events;
  auto* put = notification->add_subcommand("put", "create or replace a notification target");
  put->add_option("group", group)->required();
  put->add_option("name", name)->required();
  put->add_option("--url", url, "webhook URL (http:// or https://)")->required();
  put->add_option("--format", format, "generic (tide's JSON) or wecom (WeCom group robot)")
      ->check(CLI::IsMember({"generic", "wecom"}))
      ->capture_default_str();
  put->add_option("--events", events, "comma-separated: " + tide::coordinator::notification_event_names())
      ->required()
      ->delimiter(',');
  put->callback([&request] {
    request = Request{"PUT", "/v1/groups/" + enc(group) + "/notifications/" + enc(name),
                      json{{"url", url}, {"format", format}, {"events", events}}, render_object, nullptr};
  });
  add_list_show_delete(*notification, request, "notifications", "notification target",
                       render_list("notifications", {field("NAME", "name"), field("FORMAT", "format"),
                                                     field("URL", "url"), Column{"EVENTS", [](const json& row) {
                                                       std::string joined;
                                                       for (const auto& e : row.value("events", json::array())) {
                                                         joined += (joined.empty() ? "" : ",") + to_text(e);
                                                       }
                                                       return joined;
                                                     }}}));
}

}  // namespace

void add_spec_commands(CLI::App& app, CLI::App& schedule, Request& request, std::int64_t now_ms) {
  add_policy(app, request);
  add_schedule(schedule, request, now_ms);
  add_hook(app, request);
  add_lifecycle(app, request);
  add_notification(app, request);
}

}  // namespace tide::tidectl
