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
#include "coordinator/tidectl/launch_config.hpp"
#include "coordinator/tidectl/rollout.hpp"
#include "coordinator/tidectl/schedule_preview.hpp"
#include "coordinator/tidectl/table.hpp"
#include "coordinator/tidectl/yaml_output.hpp"

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

// -o json and -o yaml print the API's answer as it is; table and wide render it.
bool is_document(const std::string& output) { return output == "json" || output == "yaml"; }

void print_document(const std::string& output, const json& body) {
  if (output == "yaml") {
    tide::tidectl::print_yaml(std::cout, body);
  } else {
    std::cout << body.dump(2) << '\n';
  }
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

// A command's `-w/--watch`: what to ask again and how to title each refresh.
struct Watch {
  std::string path;
  std::string title;
};

// Runs after the first answer was printed: the same request every 2 s, each
// answer under "<title> at HH:MM:SS" (or as a JSON/YAML document), until
// Ctrl-C or for at most an hour. A failed refresh is reported and the next
// one tried; a 404 (the group or instance is gone) ends it.
int watch(const tide::tidectl::Endpoint& endpoint, const std::string& output, const Watch& what,
          const std::function<void(const json&)>& render) {
  constexpr auto kPeriod = std::chrono::seconds(2);
  constexpr auto kLimit = std::chrono::hours(1);
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start + kPeriod <= kLimit) {
    std::this_thread::sleep_for(kPeriod);
    const auto response = tide::tidectl::call(endpoint, "GET", what.path);
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
    if (is_document(output)) {
      print_document(output, response.body);
    } else {
      std::cout << '\n' << what.title << " at " << clock_text() << '\n';
      if (render) render(response.body);
    }
    std::cout.flush();
  }
  std::cerr << "tidectl: stopped watching after "
            << tide::tidectl::duration_text(std::chrono::milliseconds(kLimit).count()) << '\n';
  return kExitOk;
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
  app.add_option("-o,--output", output, "table, wide (a table with every field), json or yaml")
      ->check(CLI::IsMember({"table", "wide", "json", "yaml"}))
      ->capture_default_str();
  app.add_flag_callback("--version", [] {
    std::cout << "tidectl " << TIDE_VERSION << '\n';
    std::exit(kExitOk);
  }, "print the version and exit");

  // CLI11 binds options to variables that must outlive parse(); the
  // function-local statics below give each subcommand its own storage.
  Request request;
  const std::int64_t now = now_ms();
  // Set by a command's -w/--watch: its answer is printed again every 2 s.
  std::optional<Watch> watching;

  // ---- launch configurations ----------------------------------------------
  auto* lc = app.add_subcommand("lc", "launch configurations")->require_subcommand(1);
  lc->alias("launch-config");
  {
    static tide::tidectl::LaunchConfigFlags flags;
    static std::string readiness_period;
    auto* create = lc->add_subcommand(
        "create", "create a launch configuration, or its next version: it starts from the previous version "
                  "and changes only what is given");
    create->add_option("name", flags.name, "name")->required();
    create->add_option("--command", flags.command, "shell command that starts the application (first version: required)");
    create->add_option("--port", flags.port, "the application's port (first version: required)")->check(CLI::Range(1, 65535));
    create->add_option("--env", flags.env, "extra environment, KEY=VALUE (repeatable; added to the previous version's)");
    create->add_option("--env-file", flags.env_files,
                       "secret environment read from a file at each launch, KEY=/absolute/path (repeatable)");
    create->add_option("--unset-env", flags.unset_env, "remove KEY from the previous version's environment (repeatable)");
    create->add_option("--readiness-path", flags.readiness_path, "HTTP path the agent probes (first version: /ready)");
    create->add_option("--readiness-period", readiness_period,
                       "how often the agent probes readiness once the application was ready, e.g. 200ms "
                       "(10ms..60s; default: the agent's own, 1s)");
    create->add_option("--hourly-price", flags.hourly_price, "price per instance-hour, for cost reports");
    create->add_flag("--fresh", flags.fresh, "do not start from the previous version: what is not given is the default");
    create->callback([&] {
      if (!readiness_period.empty()) {
        auto ms = tide::tidectl::parse_duration_ms(readiness_period);
        if (!ms) throw CLI::ValidationError("--readiness-period", ms.error());
        flags.readiness_period_ms = *ms;  // the coordinator checks the bounds
      }
      const std::string path = "/v1/launch-configurations/" + enc(flags.name);
      const auto current = tide::tidectl::call(endpoint, "GET", path);
      if (current.status == 0 || current.status >= 500) {
        std::cerr << "tidectl: " << (current.status == 0 ? current.transport_error : error_text(app, current.body)) << '\n';
        throw CLI::RuntimeError(kExitUnavailable);
      }
      const json previous = current.status == 200 ? current.body : json();
      auto plan = tide::tidectl::plan_launch_config(previous, flags);
      if (!plan) throw CLI::ValidationError(plan.error());
      if (plan->unchanged) {
        request = {"GET", path, std::nullopt, [](const json& body) {
                     std::cout << flags.name << ": unchanged, still version " << body.value("version", 0)
                               << " (nothing given differs from it)\n";
                   }};
        return;
      }
      request = {"POST", "/v1/launch-configurations", plan->body,
                 [changes = plan->changes, from = previous.is_object() ? previous.value("version", 0) : 0](const json& body) {
                   std::cout << body.value("id", "") << ": version " << body.value("version", 0);
                   if (from == 0) {
                     std::cout << " created\n";
                   } else {
                     std::cout << " (from version " << from << ")\n";
                     for (const auto& change : changes) std::cout << "  " << change << '\n';
                   }
                 }};
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
    static bool show_watch = false;
    show->add_flag("-w,--watch", show_watch, "print it again every 2 s until Ctrl-C (at most 1 h)");
    show->callback([&] {
      request = {"GET", "/v1/groups/" + enc(show_name), std::nullopt, render_object};
      if (show_watch) watching = Watch{request.path, show_name};
    });

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
      request = {"GET", path, std::nullopt, [](const json& body) { print_group_metrics(std::cout, body); }};
      if (metrics_watch) watching = Watch{path, metrics_name};
    });
    tide::tidectl::add_group_history_command(*group, request, now);
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
    static bool list_watch = false, list_quiet = false;
    list->add_flag("-q,--quiet", list_quiet, "print only the ids, one per line (for scripts: $(tidectl instance list -q))");
    list->add_flag("-w,--watch", list_watch, "print the list again every 2 s until Ctrl-C (at most 1 h)");
    list->callback([&] {
      std::string path = "/v1/instances";
      if (!list_group.empty()) path += "?group=" + enc(list_group);
      if (list_all) path += list_group.empty() ? "?all" : "&all";
      if (list_watch) watching = Watch{path, list_group.empty() ? "instances" : "instances of " + list_group};
      if (list_quiet) {
        request = {"GET", path, std::nullopt, [](const json& body) {
                     for (const auto& row : body.value("instances", json::array())) {
                       std::cout << row.value("id", "") << '\n';
                     }
                   }};
        return;
      }
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
    static bool attach_protected = false, attach_keep_desired = false;
    auto* attach = instance->add_subcommand("attach", "attach a running server to a group");
    attach->add_option("group", attach_group)->required();
    attach->add_option("--address", attach_address, "the server's address")->required();
    attach->add_option("--port", attach_port, "the server's service port")->required()->check(CLI::Range(1, 65535));
    attach->add_flag("--protected", attach_protected, "protect it from scale-in");
    attach->add_flag("--no-increment-desired", attach_keep_desired,
                     "keep desired capacity: the group then ends one of its own instances to make room "
                     "(default: desired grows by one, as AWS's attach-instances does)");
    attach->callback([&] {
      request = {"POST", "/v1/groups/" + enc(attach_group) + "/attach",
                 json{{"address", attach_address}, {"port", attach_port}, {"protected", attach_protected},
                      {"increment_desired", !attach_keep_desired}},
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
    static std::string group_name, status, type, since, until;
    static int limit = 50;
    auto* list = activity->add_subcommand("list", "a group's activity history, newest first");
    list->add_option("group", group_name)->required();
    list->add_option("--status", status, "running, successful, partially_successful, failed, cancelled");
    list->add_option("--type", type, "scale_out, scale_in, attach, detach, replace_unhealthy, ...");
    list->add_option("--since", since, "only activities started since: a duration ago (1h, 30m) or a time "
                                       "(2026-12-06T11:00, local unless it ends in Z or +08:00)");
    list->add_option("--until", until, "only activities started before: a duration ago or a time");
    list->add_option("--limit", limit, "newest first, at most this many")->check(CLI::Range(1, 1000))->capture_default_str();
    list->callback([&] {
      std::string path = "/v1/groups/" + enc(group_name) + "/activities?limit=" + std::to_string(limit);
      if (!status.empty()) path += "&status=" + enc(status);
      if (!type.empty()) path += "&type=" + enc(type);
      for (const auto& [flag, text, key] : {std::tuple{"--since", &since, "since"}, std::tuple{"--until", &until, "until"}}) {
        if (text->empty()) continue;
        const auto at = tide::tidectl::parse_point_in_time(*text, now);
        if (!at) throw CLI::ValidationError(flag, at.error());
        path += std::string("&") + key + "=" + std::to_string(*at);
      }
      request = {"GET", path, std::nullopt,
                 render_list("activities",
                             {tide::tidectl::field("ID", "id"), tide::tidectl::field("TYPE", "type"),
                              tide::tidectl::field("STATUS", "status"),
                              Column{"STARTED", [](const json& row) {
                                       return tide::tidectl::time_text(row.value("start_ms", std::int64_t{0}));
                                     }, "start_ms"},
                              Column{"DURATION", [now](const json& row) {
                                       const auto start = row.value("start_ms", std::int64_t{0});
                                       const json& end = row.contains("end_ms") ? row["end_ms"] : json();
                                       if (!end.is_number()) return tide::tidectl::format_duration_ms(now - start) + " (running)";
                                       return tide::tidectl::duration_text(end.get<std::int64_t>() - start);
                                     }, "end_ms"},
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

  auto* console = app.add_subcommand("console", "the web console")->require_subcommand(1);
  console
      ->add_subcommand("url", "print a link that logs a browser into the web console, once, within 10 minutes")
      ->callback([&] {
        request = {"POST", "/v1/console/links", json::object(), [&endpoint](const json& body) {
                     std::string base = endpoint.url;
                     while (!base.empty() && base.back() == '/') base.pop_back();
                     std::cout << base << body.value("path", std::string()) << '\n';
                   }};
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
  } catch (const CLI::RuntimeError& error) {  // a command's own failure, already reported
    return error.get_exit_code();
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

  tide::tidectl::set_wide_tables(output == "wide");
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
    if (is_document(output)) print_document(output, response.body);
    return request.on_error(response.status, response.body);
  }
  if (response.status >= 400) {
    const std::string message = error_text(app, response.body);
    if (is_document(output)) {
      print_document(output, response.body);
    } else {
      std::cerr << "tidectl: " << message << " (HTTP " << response.status << ")\n";
    }
    return response.status >= 500 ? kExitUnavailable : kExitRefused;
  }
  // Warnings the coordinator adds to an answer (a policy on a metric nothing
  // reports): on stderr, so that -o json stays a clean document.
  if (response.body.is_object() && response.body.contains("warnings") && response.body["warnings"].is_array()) {
    for (const auto& warning : response.body["warnings"]) {
      std::cerr << "tidectl: warning: " << tide::tidectl::to_text(warning) << '\n';
    }
  }
  if (is_document(output)) {
    print_document(output, response.body);
  } else if (request.render) {
    if (watching) std::cout << watching->title << " at " << clock_text() << '\n';
    request.render(response.body);
  }
  if (watching) {
    std::cout.flush();
    return watch(endpoint, output, *watching, request.render);
  }
  return kExitOk;
}
