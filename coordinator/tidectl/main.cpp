// tidectl: the command-line client of tide-coordinator's admin API.
//
// Every subcommand is one HTTP request. Output is a readable table by
// default and the API's JSON with `-o json`. Exit codes:
//   0 success, 1 the coordinator refused the request (4xx),
//   2 bad usage, 3 the coordinator could not be reached or failed (5xx).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "coordinator/tidectl/client.hpp"
#include "coordinator/tidectl/commands.hpp"
#include "coordinator/tidectl/completion.hpp"
#include "coordinator/tidectl/rollout.hpp"
#include "coordinator/tidectl/schedule_preview.hpp"
#include "coordinator/tidectl/table.hpp"

namespace {

using nlohmann::json;
using tide::tidectl::Column;

using tide::tidectl::kExitOk;
using tide::tidectl::kExitRefused;
using tide::tidectl::kExitUnavailable;
using tide::tidectl::kExitUsage;
using tide::tidectl::Request;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void render_object(const json& body) { tide::tidectl::print_object(std::cout, body); }

void render_message(const json& body) {
  if (body.is_object() && body.contains("message")) {
    std::cout << body["message"].get<std::string>() << '\n';
  } else {
    render_object(body);
  }
}

std::function<void(const json&)> render_list(std::string key, std::vector<Column> columns) {
  return [key = std::move(key), columns = std::move(columns)](const json& body) {
    tide::tidectl::print_table(std::cout, columns, body.is_object() ? body.value(key, json::array()) : body);
  };
}

// "KEY=VALUE" pairs into a JSON object; a pair without '=' is a usage error.
json parse_pairs(const std::vector<std::string>& pairs, const std::string& flag) {
  json object = json::object();
  for (const auto& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw CLI::ValidationError(flag, "expected KEY=VALUE, got '" + pair + "'");
    }
    object[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return object;
}

std::string enc(const std::string& text) { return tide::tidectl::url_encode(text); }

// `group metrics`: one line per metric of GET /v1/groups/{g}/metrics, with a
// NOTE column only when some metric has missing or incomplete data.
void print_group_metrics(std::ostream& out, const json& body) {
  using tide::tidectl::field;
  std::vector<Column> columns{
      field("METRIC", "name"), field("SOURCE", "source"),
      Column{"USED BY", [](const json& row) {
               std::string joined;
               for (const auto& name : row.value("used_by", json::array())) {
                 joined += (joined.empty() ? "" : ",") + tide::tidectl::to_text(name);
               }
               return joined.empty() ? std::string("-") : joined;
             }},
      Column{"WINDOW", [](const json& row) {
               return tide::tidectl::duration_text(row.value("window_ms", std::int64_t{0}));
             }},
      field("AVG", "average"), field("MIN", "minimum"), field("MAX", "maximum"),
      Column{"REPORTERS", [](const json& row) {
               return std::to_string(row.value("reporters", 0U)) + "/" + std::to_string(row.value("eligible", 0U));
             }}};
  const json metrics = body.is_object() ? body.value("metrics", json::array()) : json::array();
  const bool any_note =
      std::any_of(metrics.begin(), metrics.end(), [](const json& row) { return row.value("note", json()).is_string(); });
  if (any_note) columns.push_back(field("NOTE", "note"));
  tide::tidectl::print_table(out, columns, metrics);
}

// Local wall-clock time of day, for the header of each `--watch` refresh.
std::string clock_text() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &local);
  return buffer;
}

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// When the command line names a command that does not exist ("groups",
// "group ls") or stops before naming one ("group"), what to say instead of
// CLI11's "A subcommand is required": the unknown word, where, and the
// nearest command (name or alias) there; or the commands to choose from.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv) {
  static const std::set<std::string> kValueFlags{"--endpoint", "--token", "-o", "--output"};
  const CLI::App* at = &app;
  std::string path = "tidectl";
  for (int k = 1; k < argc; ++k) {
    const std::string word = argv[k];
    if (word.starts_with("-")) {
      if (kValueFlags.contains(word)) ++k;  // its value is not a command
      continue;
    }
    const auto children = at->get_subcommands([](const CLI::App*) { return true; });
    // Arguments of a command that takes no subcommand: CLI11 judges them.
    if (children.empty() || at->get_require_subcommand_min() == 0) return std::nullopt;
    const CLI::App* next = nullptr;
    std::string nearest;
    std::size_t best = SIZE_MAX;
    for (const CLI::App* child : children) {
      const auto consider = [&](const std::string& name) {
        if (name == word) next = child;
        // A plural or a prefix ("groups", "pol") counts as near.
        const bool related = name.starts_with(word) || word.starts_with(name);
        const std::size_t score = related ? 0 : edit_distance(word, name);
        if (score < best) {
          best = score;
          nearest = child->get_name();
        }
      };
      consider(child->get_name());
      for (const std::string& alias : child->get_aliases()) consider(alias);
    }
    if (next == nullptr) {
      std::string text = "unknown command '" + word + "' for '" + path + "'";
      if (best <= 2) text += "; did you mean '" + nearest + "'?";
      return text + " (" + path + " --help lists the commands)";
    }
    at = next;
    path += " " + next->get_name();
  }
  if (at == &app || at->get_require_subcommand_min() == 0) return std::nullopt;
  // A group of commands named without one of them ("tidectl group").
  std::string text = "'" + path + "' needs a command:";
  for (const CLI::App* child : at->get_subcommands([](const CLI::App*) { return true; })) {
    text += " " + child->get_name();
  }
  return text;
}

// The flag of the command that ran which sets API field `field` ("period_ms"
// -> "--period", "agent.readiness_period_ms" -> "--readiness-period"), so
// that an error names what the user typed; empty when no flag sets it.
std::string flag_for_field(const CLI::App& app, const std::string& field) {
  const CLI::App* command = &app;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* child : command->get_subcommands()) {
      command = child;
      deeper = true;
      break;
    }
  }
  std::string stem = field.substr(field.rfind('.') == std::string::npos ? 0 : field.rfind('.') + 1);
  for (const char* suffix : {"_ms", "_time"}) {
    if (stem.ends_with(suffix)) stem.resize(stem.size() - std::string(suffix).size());
  }
  // Where the flag is not the field's name with dashes.
  static const std::map<std::string, std::string> kRenamed{
      {"default_cooldown", "cooldown"},          {"health_check_grace_period", "health-grace"},
      {"launch_configuration", "launch-config"}, {"time_zone", "tz"},
      {"evaluation_periods", "periods"},         {"min_adjustment_magnitude", "min-magnitude"},
      {"termination_policy", "termination-policy"}};
  std::string flag = kRenamed.contains(stem) ? kRenamed.at(stem) : stem;
  std::replace(flag.begin(), flag.end(), '_', '-');
  flag = "--" + flag;
  return command->get_option_no_throw(flag) != nullptr ? flag : std::string();
}

// An API error as tidectl prints it: "period_ms: must be ..." becomes
// "--period: must be ..." when the command has that flag.
std::string error_text(const CLI::App& app, const json& body) {
  if (!body.is_object() || !body.contains("error")) return body.dump();
  std::string message = tide::tidectl::to_text(body["error"]);
  const std::string field = body.value("field", "");
  if (field.empty()) return message;
  const std::string flag = flag_for_field(app, field);
  if (flag.empty()) return message;
  if (message.starts_with(field + ": ")) message.erase(0, field.size() + 2);
  return flag + ": " + message;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tidectl — control a tide coordinator", "tidectl"};
  app.require_subcommand(1);
  // The global flags (-o, --endpoint, --token) work anywhere on the command
  // line, as kubectl's do: subcommands (which inherit this) pass options they
  // do not know up to the app.
  app.fallthrough();
  tide::tidectl::Endpoint endpoint;
  if (const char* env = std::getenv("TIDE_ENDPOINT")) endpoint.url = env;
  if (const char* env = std::getenv("TIDE_TOKEN")) endpoint.token = env;
  std::string output = "table";
  app.add_option("--endpoint", endpoint.url, "coordinator API URL (env TIDE_ENDPOINT)")
      ->capture_default_str();
  app.add_option("--token", endpoint.token, "bearer token (env TIDE_TOKEN)");
  app.add_option("-o,--output", output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_flag_callback("--version", [] {
    std::cout << "tidectl " << TIDE_VERSION << '\n';
    std::exit(kExitOk);
  }, "print the version and exit");

  // CLI11 binds options to variables that must outlive parse(); the
  // function-local statics below give each subcommand its own storage.
  Request request;
  const std::int64_t now = now_ms();
  // Set by a command that goes on after its first answer (`--watch`): its
  // return value is the exit status.
  std::function<int()> follow;

  // ---- launch configurations ----------------------------------------------
  auto* lc = app.add_subcommand("lc", "launch configurations")->require_subcommand(1);
  lc->alias("launch-config");
  {
    static std::string name, command, readiness_path = "/ready", readiness_period;
    static int port = 0;
    static double price = 0.0;
    static std::vector<std::string> env, env_files;
    auto* create = lc->add_subcommand("create", "create a launch configuration (or its next version)");
    create->add_option("name", name, "name")->required();
    create->add_option("--command", command, "shell command that starts the application")->required();
    create->add_option("--port", port, "the application's port")->required()->check(CLI::Range(1, 65535));
    create->add_option("--env", env, "extra environment, KEY=VALUE (repeatable)");
    create->add_option("--env-file", env_files,
                       "secret environment read from a file at each launch, KEY=/absolute/path (repeatable)");
    create->add_option("--readiness-path", readiness_path, "HTTP path the agent probes")->capture_default_str();
    create->add_option("--readiness-period", readiness_period,
                       "how often the agent probes readiness once the application was ready, e.g. 200ms "
                       "(10ms..60s; default: the agent's own, 1s)");
    create->add_option("--hourly-price", price, "price per instance-hour, for cost reports");
    create->callback([&] {
      json agent{{"readiness_path", readiness_path}};
      if (!readiness_period.empty()) {
        auto ms = tide::tidectl::parse_duration_ms(readiness_period);
        if (!ms) throw CLI::ValidationError("--readiness-period", ms.error());
        agent["readiness_period_ms"] = *ms;  // the coordinator checks the bounds
      }
      request = {"POST", "/v1/launch-configurations",
                 json{{"id", name}, {"command", command}, {"port", port},
                      {"env", parse_pairs(env, "--env")},
                      {"env_files", parse_pairs(env_files, "--env-file")},
                      {"agent", agent},
                      {"hourly_price", price}},
                 render_object};
    });
    lc->add_subcommand("list", "list launch configurations")->callback([&] {
      request = {"GET", "/v1/launch-configurations", std::nullopt,
                 render_list("launch_configurations",
                             {tide::tidectl::field("NAME", "id"), tide::tidectl::field("VERSION", "version"),
                              tide::tidectl::field("PORT", "port"), tide::tidectl::field("COMMAND", "command"),
                              tide::tidectl::age("AGE", "created_ms", now)})};
    });
    static std::string show_name;
    auto* show = lc->add_subcommand("show", "show a launch configuration");
    show->add_option("name", show_name)->required();
    show->callback([&] { request = {"GET", "/v1/launch-configurations/" + enc(show_name), std::nullopt, render_object}; });
    static std::string del_name;
    auto* del = lc->add_subcommand("delete", "delete an unused launch configuration");
    del->add_option("name", del_name)->required();
    del->callback([&] { request = {"DELETE", "/v1/launch-configurations/" + enc(del_name), std::nullopt, render_message}; });
  }

  // ---- scaling groups -------------------------------------------------------
  auto* group = app.add_subcommand("group", "scaling groups")->require_subcommand(1);
  {
    static std::string name, lc_name, backend, termination = "oldest_instance";
    static std::optional<int> min, max, desired, lb_port;
    static std::string drain_timeout, boot_timeout, grace, cooldown, warmup;
    auto* create = group->add_subcommand("create", "create a scaling group");
    create->add_option("name", name)->required();
    create->add_option("--launch-config", lc_name, "launch configuration name")->required();
    create->add_option("--min", min, "minimum size")->required()->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    create->add_option("--max", max, "maximum size")->required()->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    create->add_option("--desired", desired, "desired capacity (default: min)")->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    create->add_option("--backend", backend, "HAProxy backend the instances join");
    create->add_option("--lb-port", lb_port, "service port registered in the LB (default: the launch configuration's)");
    create->add_option("--termination-policy", termination, "oldest_instance, newest_instance or oldest_launch_configuration")
        ->check(CLI::IsMember({"oldest_instance", "newest_instance", "oldest_launch_configuration"}))
        ->capture_default_str();
    create->add_option("--drain-timeout", drain_timeout, "how long to wait for connections to end, e.g. 30s");
    create->add_option("--boot-timeout", boot_timeout, "from launch to the agent's HELLO, e.g. 5m");
    create->add_option("--health-grace", grace, "how long health checks are ignored after launch, e.g. 60s");
    create->add_option("--cooldown", cooldown, "default cooldown between scaling activities, e.g. 5m");
    create->add_option("--warmup", warmup, "how long an instance's metrics are ignored after it enters service");
    create->callback([&] {
      json body{{"name", name}, {"launch_configuration", lc_name}, {"min", *min}, {"max", *max},
                {"termination_policy", termination}};
      if (desired) body["desired"] = *desired;
      if (!backend.empty()) body["load_balancer"] = {{"backend", backend}, {"port", lb_port.value_or(0)}};
      // Durations as typed ("30s", "5m"; a bare number is seconds).
      for (const auto& [flag, text, key] :
           {std::tuple{"--drain-timeout", &drain_timeout, "drain_timeout_ms"},
            std::tuple{"--boot-timeout", &boot_timeout, "boot_timeout_ms"},
            std::tuple{"--health-grace", &grace, "health_check_grace_period_ms"},
            std::tuple{"--cooldown", &cooldown, "default_cooldown_ms"}, std::tuple{"--warmup", &warmup, "warmup_ms"}}) {
        if (text->empty()) continue;
        const auto ms = tide::tidectl::parse_duration_ms(*text);
        if (!ms) throw CLI::ValidationError(flag, ms.error());
        body[key] = *ms;
      }
      request = {"POST", "/v1/groups", body, render_object};
    });
    group->add_subcommand("list", "list scaling groups")->callback([&] {
      request = {"GET", "/v1/groups", std::nullopt,
                 render_list("groups",
                             {tide::tidectl::field("NAME", "name"), tide::tidectl::field("MIN", "min"),
                              tide::tidectl::field("DESIRED", "desired"), tide::tidectl::field("MAX", "max"),
                              tide::tidectl::field("ACTUAL", "actual"),
                              tide::tidectl::field("IN SERVICE", "in_service"),
                              tide::tidectl::field("LAUNCH CONFIG", "launch_configuration"),
                              tide::tidectl::field("BACKEND", "load_balancer/backend"),
                              tide::tidectl::field("ENABLED", "enabled")})};
    });
    static std::string show_name;
    auto* show = group->add_subcommand("show", "show a scaling group");
    show->add_option("name", show_name)->required();
    show->callback([&] { request = {"GET", "/v1/groups/" + enc(show_name), std::nullopt, render_object}; });

    static std::string set_name, set_lc;
    static std::optional<int> set_min, set_max, set_desired;
    auto* set = group->add_subcommand("set", "change min, max, desired or the launch configuration");
    set->add_option("name", set_name)->required();
    set->add_option("--min", set_min)->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    set->add_option("--max", set_max)->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    set->add_option("--desired", set_desired)->check(CLI::Range(0, tide::tidectl::kMaxCapacity));
    set->add_option("--launch-config", set_lc, "switch new launches to this launch configuration");
    set->callback([&] {
      json body = json::object();
      if (set_min) body["min"] = *set_min;
      if (set_max) body["max"] = *set_max;
      if (set_desired) body["desired"] = *set_desired;
      if (!set_lc.empty()) body["launch_configuration"] = set_lc;
      if (body.empty()) throw CLI::ValidationError("group set", "give at least one of --min, --max, --desired, --launch-config");
      request = {"PATCH", "/v1/groups/" + enc(set_name), body, render_object};
    });
    static std::string toggle_name;
    for (const char* verb : {"enable", "disable"}) {
      auto* toggle = group->add_subcommand(verb, std::string(verb) + " a group's automatic scaling");
      toggle->add_option("name", toggle_name)->required();
      toggle->callback([&, verb = std::string(verb)] {
        request = {"POST", "/v1/groups/" + enc(toggle_name) + "/" + verb, json::object(), render_object};
      });
    }
    static std::string metrics_name;
    static bool metrics_watch = false;
    auto* metrics = group->add_subcommand("metrics", "a group's metrics: values, the policies using them, who reported");
    metrics->add_option("group", metrics_name)->required();
    metrics->add_flag("-w,--watch", metrics_watch, "print them again every 2 s until Ctrl-C (at most 1 h)");
    metrics->callback([&] {
      const std::string path = "/v1/groups/" + enc(metrics_name) + "/metrics";
      request = {"GET", path, std::nullopt, [](const json& body) {
                   if (metrics_watch) std::cout << metrics_name << " at " << clock_text() << '\n';
                   print_group_metrics(std::cout, body);
                 }};
      if (!metrics_watch) return;
      // Runs after the first answer was printed; a failed refresh is
      // reported and the next one tried, a group that is gone ends it.
      follow = [&endpoint, &output, path]() {
        constexpr auto kPeriod = std::chrono::seconds(2);
        constexpr auto kLimit = std::chrono::hours(1);
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start + kPeriod <= kLimit) {
          std::this_thread::sleep_for(kPeriod);
          const auto response = tide::tidectl::call(endpoint, "GET", path);
          if (response.status == 0) {
            std::cerr << "tidectl: " << response.transport_error << "; still trying\n";
            continue;
          }
          if (response.status >= 400) {
            std::cerr << "tidectl: " << tide::tidectl::to_text(response.body.value("error", json(response.body.dump())))
                      << " (HTTP " << response.status << ")\n";
            if (response.status == 404) return kExitRefused;
            continue;
          }
          if (output == "json") {
            std::cout << response.body.dump(2) << '\n';
          } else {
            std::cout << '\n' << metrics_name << " at " << clock_text() << '\n';
            print_group_metrics(std::cout, response.body);
          }
          std::cout.flush();
        }
        std::cerr << "tidectl: stopped watching after " << tide::tidectl::duration_text(
                                                                  std::chrono::milliseconds(kLimit).count())
                  << '\n';
        return kExitOk;
      };
    });
    static std::string del_name;
    auto* del = group->add_subcommand("delete", "delete an empty scaling group");
    del->add_option("name", del_name)->required();
    del->callback([&] { request = {"DELETE", "/v1/groups/" + enc(del_name), std::nullopt, render_message}; });
  }

  // ---- instances ----------------------------------------------------------------
  auto* instance = app.add_subcommand("instance", "instances")->require_subcommand(1);
  {
    static std::string list_group;
    static bool list_all = false;
    auto* list = instance->add_subcommand("list", "list instances");
    list->add_option("--group,-g", list_group, "only this group's");
    list->add_flag("--all,-a", list_all, "also instances that are gone (terminated, failed to launch, detached)");
    list->callback([&] {
      std::string path = "/v1/instances";
      if (!list_group.empty()) path += "?group=" + enc(list_group);
      if (list_all) path += list_group.empty() ? "?all" : "&all";
      request = {"GET", path, std::nullopt,
                 render_list("instances",
                             {tide::tidectl::field("ID", "id"), tide::tidectl::field("GROUP", "group"),
                              tide::tidectl::field("STATE", "state"), tide::tidectl::field("HEALTH", "health"),
                              tide::tidectl::field("READY", "ready"), tide::tidectl::field("IN LB", "in_lb"),
                              tide::tidectl::field("ADDRESS", "address"), tide::tidectl::field("PORT", "port"),
                              tide::tidectl::field("ORIGIN", "origin"),
                              tide::tidectl::field("PROTECTED", "protected_from_scale_in"),
                              tide::tidectl::age("AGE", "created_ms", now)})};
    });
    static std::string show_id;
    auto* show = instance->add_subcommand("show", "show an instance");
    show->add_option("id", show_id)->required();
    show->callback([&] { request = {"GET", "/v1/instances/" + enc(show_id), std::nullopt, render_object}; });

    static std::string attach_group, attach_address;
    static int attach_port = 0;
    static bool attach_protected = false;
    auto* attach = instance->add_subcommand("attach", "attach a running server to a group");
    attach->add_option("group", attach_group)->required();
    attach->add_option("--address", attach_address, "the server's address")->required();
    attach->add_option("--port", attach_port, "the server's service port")->required()->check(CLI::Range(1, 65535));
    attach->add_flag("--protected", attach_protected, "protect it from scale-in");
    attach->callback([&] {
      request = {"POST", "/v1/groups/" + enc(attach_group) + "/attach",
                 json{{"address", attach_address}, {"port", attach_port}, {"protected", attach_protected}},
                 render_object};
    });
    static std::string id;
    static bool decrement = false;
    auto* detach = instance->add_subcommand("detach", "remove an instance from its group without terminating it");
    detach->add_option("id", id)->required();
    detach->add_flag("--decrement-desired", decrement, "lower desired capacity instead of replacing it");
    detach->callback([&] {
      request = {"POST", "/v1/instances/" + enc(id) + "/detach", json{{"decrement_desired", decrement}}, render_object};
    });
    auto* terminate = instance->add_subcommand("terminate", "drain and terminate an instance");
    terminate->add_option("id", id)->required();
    terminate->add_flag("--decrement-desired", decrement, "lower desired capacity instead of replacing it");
    terminate->callback([&] {
      request = {"POST", "/v1/instances/" + enc(id) + "/terminate", json{{"decrement_desired", decrement}}, render_object};
    });
    for (const auto& [verb, value] : std::map<std::string, bool>{{"protect", true}, {"unprotect", false}}) {
      auto* sub = instance->add_subcommand(verb, value ? "protect an instance from scale-in" : "remove scale-in protection");
      sub->add_option("id", id)->required();
      sub->callback([&, value = value] {
        request = {"POST", "/v1/instances/" + enc(id) + "/protection", json{{"protected", value}}, render_object};
      });
    }
  }

  // ---- activities ---------------------------------------------------------------
  auto* activity = app.add_subcommand("activity", "scaling activities")->require_subcommand(1);
  {
    static std::string group_name, status, type;
    static int limit = 50;
    auto* list = activity->add_subcommand("list", "a group's activity history, newest first");
    list->add_option("group", group_name)->required();
    list->add_option("--status", status, "running, successful, partially_successful, failed, cancelled");
    list->add_option("--type", type, "scale_out, scale_in, attach, detach, replace_unhealthy, ...");
    list->add_option("--limit", limit)->check(CLI::Range(1, 10000))->capture_default_str();
    list->callback([&] {
      std::string path = "/v1/groups/" + enc(group_name) + "/activities?limit=" + std::to_string(limit);
      if (!status.empty()) path += "&status=" + enc(status);
      if (!type.empty()) path += "&type=" + enc(type);
      request = {"GET", path, std::nullopt,
                 render_list("activities",
                             {tide::tidectl::field("ID", "id"), tide::tidectl::field("TYPE", "type"),
                              tide::tidectl::field("STATUS", "status"),
                              tide::tidectl::age("STARTED", "start_ms", now),
                              tide::tidectl::field("CAUSE", "cause")})};
    });
    static std::string id;
    auto* show = activity->add_subcommand("show", "show one activity with its instances");
    show->add_option("id", id)->required();
    show->callback([&] { request = {"GET", "/v1/activities/" + enc(id), std::nullopt, render_object}; });
  }

  auto* schedule = app.add_subcommand("schedule", "scheduled actions")->require_subcommand(1);
  tide::tidectl::add_schedule_preview(*schedule);
  tide::tidectl::add_spec_commands(app, *schedule, request, now);
  tide::tidectl::add_cost_command(app, request, now);
  tide::tidectl::add_apply_command(app, request);
  tide::tidectl::add_rollout_command(
      app, request, [&endpoint](const std::string& path) { return tide::tidectl::call(endpoint, "GET", path); }, now);

  app.add_subcommand("status", "the coordinator's health")->callback([&] {
    request = {"GET", "/healthz", std::nullopt, render_object};
  });

  static std::string completion_shell;
  auto* completion = app.add_subcommand(
      "completion", "print a shell completion script: source <(tidectl completion bash), or zsh");
  completion->add_option("shell", completion_shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));

  if (argc == 1) {  // a bare `tidectl`: what it can do, not an error
    std::cout << app.help();
    return kExitOk;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() != 0) {
      if (auto unknown = unknown_command(app, argc, argv)) {
        std::cerr << "tidectl: " << *unknown << '\n';
        return kExitUsage;
      }
    }
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (completion->parsed()) {  // local: no coordinator needed
    std::cout << tide::tidectl::completion_script(app, completion_shell);
    return kExitOk;
  }

  const auto response = tide::tidectl::call(endpoint, request.method, request.path, request.body);
  if (response.status == 0) {
    std::cerr << "tidectl: " << response.transport_error << '\n';
    return kExitUnavailable;
  }
  if (response.status >= 400 && request.on_error) {
    if (output == "json") std::cout << response.body.dump(2) << '\n';
    return request.on_error(response.status, response.body);
  }
  if (response.status >= 400) {
    const std::string message = error_text(app, response.body);
    if (output == "json") {
      std::cout << response.body.dump(2) << '\n';
    } else {
      std::cerr << "tidectl: " << message << " (HTTP " << response.status << ")\n";
    }
    return response.status >= 500 ? kExitUnavailable : kExitRefused;
  }
  if (output == "json") {
    std::cout << response.body.dump(2) << '\n';
  } else if (request.render) {
    request.render(response.body);
  }
  if (follow) {
    std::cout.flush();
    return follow();
  }
  return kExitOk;
}
