#include "coordinator/tidectl/rollout.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "coordinator/core/rollout.hpp"
#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {

namespace {

using nlohmann::json;
namespace core = tide::coordinator;

// ---- reading the rollout JSON -------------------------------------------------
// The readers accept a missing key or an unexpected type and fall back to
// an empty value, so a document from a newer or older coordinator still
// prints.

const json& at(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string str(const json& object, const char* key) {
  const json& value = at(object, key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
  if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
  return {};
}

std::int64_t num(const json& object, const char* key) {
  const json& value = at(object, key);
  if (value.is_number_unsigned()) {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(value.get<std::uint64_t>(), INT64_MAX));
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) return static_cast<std::int64_t>(value.get<double>());
  return 0;
}

double real(const json& object, const char* key) {
  const json& value = at(object, key);
  return value.is_number() ? value.get<double>() : 0.0;
}

std::uint64_t count_at(const json& object, const char* key) {
  const std::int64_t value = num(object, key);
  return value > 0 ? static_cast<std::uint64_t>(value) : 0;
}

std::vector<std::string> strings(const json& object, const char* key) {
  std::vector<std::string> out;
  const json& value = at(object, key);
  if (!value.is_array()) return out;
  for (const auto& item : value) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// "web:4" from {"launch_configuration": "web", "version": 4}.
std::string version_label(const json& side) {
  const std::string lc = str(side, "launch_configuration");
  const std::string version = str(side, "version");
  return (lc.empty() ? "?" : lc) + ":" + (version.empty() ? "?" : version);
}

// A strategy amount as the API gives it: "25%", "3" or 3.
std::optional<core::Amount> amount_at(const json& object, const char* key) {
  const json& value = at(object, key);
  if (value.is_string()) return core::parse_amount(value.get<std::string>());
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
    const auto n = value.get<std::uint64_t>();
    if (n <= UINT32_MAX) return core::Amount{static_cast<std::uint32_t>(n), false};
  }
  return std::nullopt;
}

std::string amount_text(const json& object, const char* key) {
  const auto amount = amount_at(object, key);
  return amount ? core::to_string(*amount) : "?";
}

std::optional<core::RolloutState> state_of(std::string_view text) {
  using S = core::RolloutState;
  for (const S state : {S::Running, S::Paused, S::RollingBack, S::Succeeded, S::RolledBack, S::Cancelled, S::Failed}) {
    if (core::to_string(state) == text) return state;
  }
  return std::nullopt;
}

// The rollout is going back to `from` (or went back).
bool backwards(const json& rollout) {
  const auto state = state_of(str(rollout, "state"));
  return state == core::RolloutState::RollingBack || state == core::RolloutState::RolledBack;
}

// How many batches this direction takes at the current desired capacity:
// the batch size of desired (at least 1; the first batch at least as large
// as the canary, which it retires for), over the old instances counted when
// the direction started. Never fewer than the batches already begun.
std::optional<std::uint64_t> total_batches(const json& rollout) {
  const json& strategy = at(rollout, "strategy");
  const auto batch_amount = amount_at(strategy, "batch");
  const std::uint64_t old_at_start = count_at(rollout, "old_at_start");
  if (!batch_amount || old_at_start == 0) return std::nullopt;
  const std::uint64_t desired = std::min<std::uint64_t>(count_at(at(rollout, "progress"), "desired"), UINT32_MAX);
  const std::uint64_t size =
      std::max<std::uint64_t>(1, core::resolve_up(*batch_amount, static_cast<std::uint32_t>(desired)));
  std::uint64_t first = size;
  if (!backwards(rollout)) first = std::max<std::uint64_t>(first, strings(rollout, "canary_instances").size());
  const std::uint64_t total = old_at_start <= first ? 1 : 1 + (old_at_start - first + size - 1) / size;
  return std::max(total, count_at(rollout, "batch"));
}

std::string ago(std::int64_t then_ms, std::int64_t now_ms) {
  if (then_ms <= 0) return "-";
  return format_duration_ms(now_ms - then_ms) + " ago";
}

std::string percent_text(double share) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f%%", 100.0 * share);
  return buffer;
}

std::string ms_text(double ms) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.1f ms", ms);
  return buffer;
}

// The strategy in one or two lines: the amounts and times always, the
// optional steps (canary, pause points, protected instances) when set.
std::vector<std::string> strategy_lines(const json& strategy) {
  std::vector<std::string> lines;
  lines.push_back("batch " + amount_text(strategy, "batch") + "  max surge " + amount_text(strategy, "max_surge") +
                  "  min healthy " + amount_text(strategy, "min_healthy") + "  bake " +
                  duration_text(num(strategy, "bake_ms")) + "  deadline " +
                  duration_text(num(strategy, "batch_deadline_ms")) + "  on failure " +
                  (str(strategy, "on_failure").empty() ? "?" : str(strategy, "on_failure")));
  std::vector<std::string> extras;
  const json& canary = at(strategy, "canary");
  if (num(canary, "count") > 0) {
    extras.push_back("canary " + str(canary, "count") + " for " + duration_text(num(canary, "bake_ms")) +
                     " (judged after " + std::to_string(count_at(canary, "min_requests")) + " requests)");
  }
  if (at(strategy, "pause_after_first_batch") == true) extras.emplace_back("pause after the first batch");
  if (at(strategy, "pause_between_batches") == true) extras.emplace_back("pause between batches");
  std::vector<std::string> points;
  const json& pause_at = at(strategy, "pause_at_percent");
  if (pause_at.is_array()) {
    for (const auto& p : pause_at) {
      if (p.is_number()) points.push_back(std::to_string(p.get<std::int64_t>()) + "%");
    }
  }
  if (!points.empty()) extras.push_back("pause at " + join(points, ", "));
  if (at(strategy, "include_protected") == true) extras.emplace_back("replaces protected instances");
  if (!extras.empty()) lines.push_back(join(extras, ", "));
  return lines;
}

// The line `status --watch` prints when it changes.
std::string watch_line(const json& rollout) {
  const std::string reason = str(rollout, "reason");
  return str(rollout, "state") + "  " + rollout_progress_line(rollout) + (reason.empty() ? "" : "  (" + reason + ")");
}

std::string elapsed_text(std::int64_t ms) {
  std::string text = "+" + format_duration_ms(ms);
  if (text.size() < 8) text.resize(8, ' ');
  return text + "  ";
}

std::string group_path(const std::string& group) { return "/v1/groups/" + url_encode(group); }

// ---- the parts of `rollout start`'s body ---------------------------------------

tl::expected<void, FlagError> put_amount(json& body, const char* key, const char* flag, const std::string& text) {
  if (text.empty()) return {};
  const auto amount = core::parse_amount(text);
  if (!amount) {
    return tl::make_unexpected(
        FlagError{flag, "'" + text + "' is not a count or a percentage of desired (e.g. 3 or 25%)"});
  }
  body[key] = core::to_string(*amount);
  return {};
}

tl::expected<void, FlagError> put_duration(json& body, const char* key, const char* flag, const std::string& text) {
  if (text.empty()) return {};
  auto ms = parse_duration_ms(text);
  if (!ms) return tl::make_unexpected(FlagError{flag, ms.error()});
  body[key] = *ms;
  return {};
}

// "50,75" -> [50, 75]; the coordinator checks the range and the order.
tl::expected<json, FlagError> parse_percent_list(const std::string& text) {
  json out = json::array();
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty() || item.size() > 3 || item.find_first_not_of("0123456789") != std::string::npos) {
      return tl::make_unexpected(
          FlagError{"--pause-at", "'" + text + "' is not a list of percentages (e.g. 50,75)"});
    }
    out.push_back(std::stoi(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// NAME or NAME:VERSION. Names may hold ':' themselves, so only a trailing
// ":digits" is a version.
tl::expected<void, FlagError> put_launch_config(json& body, const std::string& text) {
  if (text.empty()) return {};
  const auto bad = [&](const std::string& why) {
    return tl::make_unexpected(FlagError{"--launch-config", "'" + text + "': " + why});
  };
  const std::size_t colon = text.rfind(':');
  if (colon != std::string::npos && colon + 1 < text.size() &&
      text.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    const std::string digits = text.substr(colon + 1);
    if (digits.size() > 9 || std::stoul(digits) == 0) return bad("the version must be 1 or more");
    if (colon == 0) return bad("expected NAME or NAME:VERSION");
    body["launch_configuration"] = text.substr(0, colon);
    body["version"] = std::stoul(digits);
    return {};
  }
  body["launch_configuration"] = text;
  return {};
}

// Whether tidectl's -o/--output option asks for JSON.
bool output_is_json(const CLI::App& app) {
  const CLI::Option* output = app.get_option_no_throw("--output");
  if (output == nullptr) return false;
  const auto& results = output->results();
  return !results.empty() && results.back() == "json";
}

int on_error(int status, const json& body) {
  std::cerr << "tidectl: " << rollout_error_text(body) << " (HTTP " << status << ")\n";
  return status >= 500 ? kExitUnavailable : kExitRefused;
}

}  // namespace

// ---- request bodies and refusals -------------------------------------------------

tl::expected<json, FlagError> rollout_start_body(const RolloutStartFlags& flags) {
  json body = json::object();
  if (auto ok = put_launch_config(body, flags.launch_config); !ok) return tl::make_unexpected(ok.error());
  if (auto ok = put_amount(body, "batch", "--batch", flags.batch); !ok) return tl::make_unexpected(ok.error());
  if (auto ok = put_amount(body, "max_surge", "--max-surge", flags.max_surge); !ok) {
    return tl::make_unexpected(ok.error());
  }
  if (auto ok = put_amount(body, "min_healthy", "--min-healthy", flags.min_healthy); !ok) {
    return tl::make_unexpected(ok.error());
  }
  if (flags.pause_after_first) body["pause_after_first_batch"] = true;
  if (flags.pause_between) body["pause_between_batches"] = true;
  if (!flags.pause_at.empty()) {
    auto points = parse_percent_list(flags.pause_at);
    if (!points) return tl::make_unexpected(points.error());
    body["pause_at_percent"] = *points;
  }
  if (auto ok = put_duration(body, "bake_ms", "--bake", flags.bake); !ok) return tl::make_unexpected(ok.error());
  if (auto ok = put_duration(body, "batch_deadline_ms", "--deadline", flags.deadline); !ok) {
    return tl::make_unexpected(ok.error());
  }
  if (!flags.canary && !flags.canary_bake.empty()) {
    return tl::make_unexpected(FlagError{"--canary-bake", "needs --canary N"});
  }
  if (!flags.canary && flags.canary_min_requests) {
    return tl::make_unexpected(FlagError{"--canary-min-requests", "needs --canary N"});
  }
  if (flags.canary) {
    json canary{{"count", *flags.canary}};
    if (auto ok = put_duration(canary, "bake_ms", "--canary-bake", flags.canary_bake); !ok) {
      return tl::make_unexpected(ok.error());
    }
    if (flags.canary_min_requests) canary["min_requests"] = *flags.canary_min_requests;
    body["canary"] = std::move(canary);
  }
  if (!flags.on_failure.empty()) {
    if (!core::parse_failure_action(flags.on_failure)) {
      return tl::make_unexpected(FlagError{"--on-failure", "'" + flags.on_failure + "' is not rollback, pause or cancel"});
    }
    body["on_failure"] = flags.on_failure;
  }
  if (flags.include_protected) body["include_protected"] = true;
  return body;
}

std::string rollout_flag_of(std::string_view field) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"launch_configuration", "--launch-config"},
      {"version", "--launch-config"},
      {"batch", "--batch"},
      {"max_surge", "--max-surge"},
      {"min_healthy", "--min-healthy"},
      {"pause_after_first_batch", "--pause-after-first"},
      {"pause_between_batches", "--pause-between"},
      {"pause_at_percent", "--pause-at"},
      {"bake_ms", "--bake"},
      {"batch_deadline_ms", "--deadline"},
      {"canary", "--canary"},
      {"canary.count", "--canary"},
      {"canary.bake_ms", "--canary-bake"},
      {"canary.min_requests", "--canary-min-requests"},
      {"on_failure", "--on-failure"},
      {"include_protected", "--include-protected"},
      {"reason", "--reason"},
  };
  for (const auto& [name, flag] : kFlags) {
    if (name == field) return std::string(flag);
  }
  return {};
}

std::string rollout_error_text(const json& body) {
  std::string message;
  if (body.is_object() && body.contains("error")) {
    message = to_text(body["error"]);
  } else {
    message = body.is_null() ? "no answer body" : body.dump();
  }
  const std::string field = str(body, "field");
  if (field.empty()) return message;
  const std::string flag = rollout_flag_of(field);
  return message + " (" + (flag.empty() ? "field " + field : flag) + ")";
}

// ---- status text ---------------------------------------------------------------------

std::string rollout_progress_line(const json& rollout) {
  const bool back = backwards(rollout);
  const json& progress = at(rollout, "progress");
  const std::uint64_t batch = count_at(rollout, "batch");
  std::string step;
  if (str(rollout, "phase") == "canary" && !back) {
    step = "canary " + std::to_string(strings(rollout, "canary_instances").size()) + " of " +
           std::to_string(count_at(at(at(rollout, "strategy"), "canary"), "count")) + " launched";
  } else if (batch == 0) {
    step = back ? "rollback starting" : "starting";
  } else {
    const auto total = total_batches(rollout);
    step = std::string(back ? "rollback batch " : "batch ") + std::to_string(batch) +
           (total ? "/" + std::to_string(*total) : "");
  }
  // target_instances counts the current target's version: the `to` version
  // going forward, the `from` version while rolling back.
  const std::uint64_t target = count_at(progress, "target_instances");
  const std::uint64_t other = count_at(progress, "old_instances");
  return step + "  replaced " + std::to_string(count_at(rollout, "replaced")) + " of " +
         std::to_string(count_at(rollout, "old_at_start")) + "  serving " +
         std::to_string(count_at(progress, "serving")) + "/" + std::to_string(count_at(progress, "desired")) +
         "  new " + std::to_string(back ? other : target) + "  old " + std::to_string(back ? target : other);
}

std::string canary_figures_text(const json& rollout) {
  const json& figures = at(rollout, "canary_figures");
  if (!figures.is_object()) return {};
  const json& canary = at(figures, "canary");
  const json& baseline = at(figures, "baseline");
  const auto share = [](const json& f) -> std::string {
    const std::uint64_t requests = count_at(f, "requests");
    if (requests == 0) return "-";
    return percent_text(static_cast<double>(count_at(f, "errors_5xx") + count_at(f, "connection_errors")) /
                        static_cast<double>(requests));
  };
  const auto mean = [](const json& f) -> std::string {
    return count_at(f, "requests") == 0 ? "-" : ms_text(real(f, "mean_response_ms"));
  };
  const std::vector<std::vector<std::string>> rows = {
      {"canary figures", "canary", "old version"},
      {"requests", std::to_string(count_at(canary, "requests")), std::to_string(count_at(baseline, "requests"))},
      {"5xx responses", std::to_string(count_at(canary, "errors_5xx")),
       std::to_string(count_at(baseline, "errors_5xx"))},
      {"connection errors", std::to_string(count_at(canary, "connection_errors")),
       std::to_string(count_at(baseline, "connection_errors"))},
      {"error share", share(canary), share(baseline)},
      {"mean response", mean(canary), mean(baseline)},
  };
  std::size_t label_width = 0;
  std::size_t canary_width = 0;
  for (const auto& row : rows) {
    label_width = std::max(label_width, row[0].size());
    canary_width = std::max(canary_width, row[1].size());
  }
  std::string out;
  for (const auto& row : rows) {
    out += row[0] + std::string(label_width - row[0].size() + 2, ' ') + row[1] +
           std::string(canary_width - row[1].size() + 2, ' ') + row[2] + '\n';
  }
  return out;
}

std::string rollout_status_text(const json& rollout, std::int64_t now_ms) {
  std::string out;
  const auto row = [&out](const std::string& label, const std::string& value) {
    out += label + std::string(label.size() < 10 ? 10 - label.size() : 1, ' ') + value + '\n';
  };
  const std::string from = version_label(at(rollout, "from"));
  const std::string to = version_label(at(rollout, "to"));
  const std::string state = str(rollout, "state");
  row("rollout", str(rollout, "id") + "  (group " + str(rollout, "group") + ")");
  std::string direction = from + " -> " + to;
  if (state == "rolling_back") direction += "  (rolling back to " + from + ")";
  if (state == "rolled_back") direction += "  (rolled back to " + from + ")";
  row("version", direction);
  row("state", state.empty() ? "?" : state);
  if (const std::string reason = str(rollout, "reason"); !reason.empty()) row("reason", reason);
  row("progress", rollout_progress_line(rollout));
  if (const auto batch = strings(rollout, "batch_instances"); !batch.empty()) row("batch", join(batch, ", "));
  if (const auto canary = strings(rollout, "canary_instances"); !canary.empty()) row("canary", join(canary, ", "));
  const auto strategy = strategy_lines(at(rollout, "strategy"));
  for (std::size_t i = 0; i < strategy.size(); ++i) row(i == 0 ? "strategy" : "", strategy[i]);
  const std::int64_t created = num(rollout, "created_ms");
  const std::int64_t finished = num(rollout, "finished_ms");
  row("started", ago(created, now_ms));
  if (finished > 0) row("finished", ago(finished, now_ms) + " (took " + format_duration_ms(finished - created) + ")");
  if (const std::string figures = canary_figures_text(rollout); !figures.empty()) out += '\n' + figures;
  return out;
}

void print_rollout_history(std::ostream& out, const json& body, std::int64_t now_ms) {
  const auto when = [now_ms](const char* key) {
    return [now_ms, key](const json& row) { return ago(num(row, key), now_ms); };
  };
  print_table(out,
              {Column{"ID", [](const json& row) { return str(row, "id"); }},
               Column{"FROM", [](const json& row) { return version_label(at(row, "from")); }},
               Column{"TO", [](const json& row) { return version_label(at(row, "to")); }},
               Column{"STATE", [](const json& row) { return str(row, "state"); }},
               Column{"STARTED", when("created_ms")}, Column{"FINISHED", when("finished_ms")},
               Column{"REASON", [](const json& row) {
                        const std::string reason = str(row, "reason");
                        return reason.empty() ? std::string("-") : reason;
                      }}},
              at(body, "rollouts"));
}

std::optional<int> rollout_exit_status(std::string_view state) {
  const auto parsed = state_of(state);
  if (!parsed || !core::is_terminal(*parsed)) return std::nullopt;
  return *parsed == core::RolloutState::Succeeded ? kExitOk : kExitRefused;
}

// ---- --watch ----------------------------------------------------------------------------

int watch_rollout(const json& first, const WatchDeps& deps, std::ostream& out, std::ostream& err, bool json_lines,
                  const WatchLimits& limits) {
  const std::string id = str(first, "id");
  const std::string group = str(first, "group");
  const std::int64_t start_ms = deps.now_ms();
  std::string last;
  const auto show = [&](const json& rollout) {
    const std::string line = json_lines ? rollout.dump() : watch_line(rollout);
    if (line == last) return;
    last = line;
    if (!json_lines) out << elapsed_text(deps.now_ms() - start_ms);
    out << line << '\n';
    out.flush();
  };

  json rollout = first;
  show(rollout);
  std::int64_t down_since_ms = -1;  // first failed poll of the current run of failures
  for (;;) {
    if (const auto status = rollout_exit_status(str(rollout, "state"))) return *status;
    if (deps.now_ms() - start_ms >= limits.max_ms) {
      err << "tidectl: stopped watching after " << duration_text(limits.max_ms) << ": rollout " << id << " is "
          << str(rollout, "state") << '\n';
      return kExitRefused;
    }
    deps.sleep_ms(limits.poll_ms);
    Response response = deps.get(group_path(group) + "/rollout");
    if (response.status == 0 || response.status >= 500) {
      // A restarting coordinator takes a moment; the rollout goes on
      // meanwhile (it is in the store), so keep asking for a while.
      const std::int64_t now = deps.now_ms();
      if (down_since_ms < 0) {
        down_since_ms = now;
        err << "tidectl: "
            << (response.status == 0 ? response.transport_error
                                     : rollout_error_text(response.body) + " (HTTP " +
                                           std::to_string(response.status) + ")")
            << "; still trying\n";
      } else if (now - down_since_ms >= limits.unreachable_ms) {
        err << "tidectl: gave up: no answer from the coordinator for " << duration_text(limits.unreachable_ms)
            << '\n';
        return kExitUnavailable;
      }
      continue;
    }
    down_since_ms = -1;
    if (response.status >= 400) {
      err << "tidectl: " << rollout_error_text(response.body) << " (HTTP " << response.status << ")\n";
      return kExitRefused;
    }
    if (str(response.body, "id") == id) {
      rollout = std::move(response.body);
      show(rollout);
      continue;
    }
    // The group's current rollout is another one: the watched one finished
    // and a new one started. Its end is in the group's history.
    const std::string now_current = str(response.body, "id");
    Response history = deps.get(group_path(group) + "/rollouts?limit=50");
    const json* found = nullptr;
    if (history.status == 200) {
      for (const auto& item : at(history.body, "rollouts")) {
        if (str(item, "id") == id) found = &item;
      }
    }
    if (found == nullptr || !rollout_exit_status(str(*found, "state"))) {
      err << "tidectl: the group's rollout is now " << now_current << "; " << id
          << " is not among its finished rollouts\n";
      return kExitRefused;
    }
    rollout = *found;
    show(rollout);
  }
}

// ---- the commands ---------------------------------------------------------------------------

void add_rollout_command(CLI::App& app, Request& request, std::function<Response(const std::string& path)> get,
                         std::int64_t now_ms) {
  auto* rollout = app.add_subcommand("rollout", "replace a group's instances with another launch configuration "
                                                "version, batch by batch (docs/rollout.md)")
                      ->require_subcommand(1);
  const core::RolloutStrategy defaults;
  const auto render_status = [now_ms](const json& body) { std::cout << rollout_status_text(body, now_ms); };

  static RolloutStartFlags flags;
  static std::string start_group;
  auto* start = rollout->add_subcommand("start", "start replacing the group's instances");
  start->add_option("group", start_group)->required();
  start->add_option("--launch-config", flags.launch_config,
                    "NAME[:VERSION] to roll out (default: the group's launch configuration; version: its latest)");
  start->add_option("--batch", flags.batch,
                    "old instances replaced per batch, a count or a percentage of desired (default " +
                        core::to_string(defaults.batch) + ")");
  start->add_option("--max-surge", flags.max_surge,
                    "instances above desired while replacing, a count or a percentage (default " +
                        core::to_string(defaults.max_surge) + ")");
  start->add_option("--min-healthy", flags.min_healthy,
                    "serving capacity never goes below this, a count or a percentage of desired (default " +
                        core::to_string(defaults.min_healthy) + ")");
  start->add_flag("--pause-after-first", flags.pause_after_first, "pause after the first batch");
  start->add_flag("--pause-between", flags.pause_between, "pause after every batch");
  start->add_option("--pause-at", flags.pause_at,
                    "pause once these percentages of the old instances are replaced, e.g. 50,75");
  start->add_option("--bake", flags.bake,
                    "a new instance must serve this long before it counts, e.g. 30s (default " +
                        duration_text(defaults.bake_ms) + ")");
  start->add_option("--deadline", flags.deadline,
                    "a batch not done within this is a failure (default " +
                        duration_text(defaults.batch_deadline_ms) + ")");
  start->add_option("--canary", flags.canary,
                    "first run N new instances beside the old ones and compare their load-balancer figures");
  start->add_option("--canary-bake", flags.canary_bake,
                    "how long the canary serves before it is judged (default " +
                        duration_text(defaults.canary.bake_ms) + ")");
  start->add_option("--canary-min-requests", flags.canary_min_requests,
                    "requests the canary must serve to be judged (default " +
                        std::to_string(defaults.canary.min_requests) + ")");
  start->add_option("--on-failure", flags.on_failure,
                    "rollback, pause or cancel (default " + std::string(core::to_string(defaults.on_failure)) + ")");
  start->add_flag("--include-protected", flags.include_protected, "also replace instances protected from scale-in");
  start->callback([&request, render_status] {
    auto body = rollout_start_body(flags);
    if (!body) throw CLI::ValidationError(body.error().flag, body.error().message);
    request = Request{"POST", group_path(start_group) + "/rollouts", std::move(*body), render_status, on_error};
  });

  static std::string status_group;
  static bool watch = false;
  static bool as_json = false;
  auto* status = rollout->add_subcommand("status", "the group's current rollout, or its latest finished one");
  status->add_option("group", status_group)->required();
  status->add_flag("-w,--watch", watch,
                   "poll every second until the rollout finishes (at most 24h); exit 0 when it succeeded, "
                   "1 when it failed, rolled back or was cancelled");
  status->add_flag("--json", as_json, "print the API's JSON (with --watch: one line per change)");
  status->callback([&app, &request, get, now_ms] {
    if (watch && output_is_json(app)) {
      throw CLI::ValidationError("--watch", "-o json prints one document; use --watch --json for one per change");
    }
    request = Request{"GET", group_path(status_group) + "/rollout", std::nullopt,
                      [get, now_ms](const json& body) {
                        if (!watch) {
                          std::cout << (as_json ? body.dump(2) + "\n" : rollout_status_text(body, now_ms));
                          return;
                        }
                        if (!as_json) std::cout << rollout_status_text(body, now_ms) << '\n';
                        const WatchDeps deps{
                            get,
                            [] {
                              return std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
                            },
                            [](std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }};
                        const int code = watch_rollout(body, deps, std::cout, std::cerr, as_json);
                        std::cout.flush();
                        // main() returns 0 once a response is rendered; the
                        // watch's outcome is the exit status instead.
                        std::exit(code);
                      },
                      on_error};
  });

  static std::string action_group;
  static std::string reason;
  for (const auto& [verb, help] : std::vector<std::pair<std::string, std::string>>{
           {"pause", "pause a running rollout (instances above desired stay)"},
           {"resume", "resume a paused rollout; its batch deadline starts again"},
           {"cancel", "stop the rollout where it is; instances stay as they are"},
           {"rollback", "replace the new version's instances with the old version again, batch by batch"}}) {
    auto* action = rollout->add_subcommand(verb, help);
    action->add_option("group", action_group)->required();
    action->add_option("--reason", reason, "recorded with the rollout and its activity");
    action->callback([&request, render_status, verb = verb] {
      json body = json::object();
      if (!reason.empty()) body["reason"] = reason;
      request = Request{"POST", group_path(action_group) + "/rollout/" + verb, std::move(body), render_status,
                        on_error};
    });
  }

  static std::string history_group;
  static int limit = 20;
  auto* history = rollout->add_subcommand("history", "the group's rollouts, newest first");
  history->add_option("group", history_group)->required();
  history->add_option("--limit", limit)->check(CLI::Range(1, 1000))->capture_default_str();
  history->callback([&request, now_ms] {
    request = Request{"GET", group_path(history_group) + "/rollouts?limit=" + std::to_string(limit), std::nullopt,
                      [now_ms](const json& body) { print_rollout_history(std::cout, body, now_ms); }, on_error};
  });
}

}  // namespace tide::tidectl
