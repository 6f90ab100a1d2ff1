// tidectl rollout start|status|pause|resume|cancel|rollback|history
// (docs/rollout.md). The request bodies and every line of text come from
// functions over plain values and the API's rollout JSON, and the --watch
// loop takes its HTTP GET, clock and sleep as functions, so all of it runs in
// tests (tests/unit/coordinator/tidectl_rollout_test.cpp) without a
// coordinator.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/tidectl/client.hpp"
#include "coordinator/tidectl/commands.hpp"

namespace CLI {
class App;
}

namespace tide::tidectl {

// The flags of `tidectl rollout start`, as typed. Empty strings and unset
// optionals leave the key out of the request, so the coordinator's defaults
// apply (coordinator/core/rollout.hpp).
struct RolloutStartFlags {
  std::string launch_config;  // NAME or NAME:VERSION
  std::string batch;          // "25%" or "3"
  std::string max_surge;
  std::string min_healthy;
  bool pause_after_first = false;
  bool pause_between = false;
  std::string pause_at;  // "50,75"
  std::string bake;      // durations: 500ms, 30s, 5m, 1h
  std::string deadline;
  std::optional<std::uint32_t> canary;
  std::string canary_bake;
  std::optional<std::uint64_t> canary_min_requests;
  std::string on_failure;  // rollback, pause or cancel
  bool include_protected = false;
};

// A flag whose value cannot be sent: the flag and why.
struct FlagError {
  std::string flag;
  std::string message;
};

// The body of POST /v1/groups/{group}/rollouts for `flags`; amounts go as
// strings ("25%"), durations as milliseconds. A value that cannot be parsed
// is a FlagError; ranges are the coordinator's to check (its 400 names the
// field, and rollout_error_text() turns that into the flag).
[[nodiscard]] tl::expected<nlohmann::json, FlagError> rollout_start_body(const RolloutStartFlags& flags);

// The `tidectl rollout start` flag that sets an API field ("bake_ms" ->
// "--bake", "canary.count" -> "--canary"); empty for a field no flag sets.
[[nodiscard]] std::string rollout_flag_of(std::string_view field);

// One line for an API refusal: its error, then the field's flag (or the field
// when no flag sets it) in parentheses.
[[nodiscard]] std::string rollout_error_text(const nlohmann::json& body);

// Where the rollout stands, in one line:
//   "batch 2/4  replaced 4 of 8  serving 8/8  new 4  old 4"
// The number of batches is worked out from the strategy's batch size at the
// current desired capacity. "new" counts instances of the rollout's `to`
// version and "old" the others, in both directions (while rolling back the
// new ones are what is being replaced).
[[nodiscard]] std::string rollout_progress_line(const nlohmann::json& rollout);

// The full status: a header (id, group, from -> to, state, reason), the
// progress line, the instances of the batch and the canary, the strategy,
// when it started and finished (relative to `now_ms`), and, when the
// document has canary_figures, the canary's figures beside the old
// version's in two aligned columns.
[[nodiscard]] std::string rollout_status_text(const nlohmann::json& rollout, std::int64_t now_ms);

// The canary_figures block alone; empty when the document has none.
[[nodiscard]] std::string canary_figures_text(const nlohmann::json& rollout);

// `{"rollouts": [...]}` as a table: ID, FROM, TO, STATE, STARTED, FINISHED, REASON.
void print_rollout_history(std::ostream& out, const nlohmann::json& body, std::int64_t now_ms);

// The exit status a watch ends with for `state`: 0 succeeded; 1 failed,
// rolled_back or cancelled; nullopt while the rollout has not finished
// (running, paused, rolling_back) or the state is unknown.
[[nodiscard]] std::optional<int> rollout_exit_status(std::string_view state);

// What `status --watch` needs from the world.
struct WatchDeps {
  std::function<Response(const std::string& path)> get;  // one HTTP GET of the admin API
  std::function<std::int64_t()> now_ms;                  // a monotonic clock
  std::function<void(std::int64_t ms)> sleep_ms;
};

struct WatchLimits {
  std::int64_t poll_ms = 1'000;                 // one GET a second
  std::int64_t max_ms = 24LL * 3'600'000;       // give up watching after a day
  std::int64_t unreachable_ms = 10LL * 60'000;  // or after the coordinator is unreachable this long
};

// Follows the rollout in `first` (the answer of GET .../rollout) until it
// finishes. Text mode prints the full status once, then a line
// "+ELAPSED  STATE  PROGRESS  (REASON)" whenever that line changes; JSON
// mode prints the document on one line whenever it changes. Returns the exit
// status: rollout_exit_status() of the final state, kExitRefused when it did
// not finish within max_ms, when the group's rollout became another one
// that is not in the group's history, or when the coordinator refuses;
// kExitUnavailable when it stayed unreachable (or answered 5xx) for
// unreachable_ms. Messages about the watch itself go to `err`.
[[nodiscard]] int watch_rollout(const nlohmann::json& first, const WatchDeps& deps, std::ostream& out,
                                std::ostream& err, bool json_lines, const WatchLimits& limits = {});

// Registers `tidectl rollout ...`. `get` performs the extra GETs of
// `status --watch` (main.cpp binds it to the endpoint).
void add_rollout_command(CLI::App& app, Request& request, std::function<Response(const std::string& path)> get,
                         std::int64_t now_ms);

}  // namespace tide::tidectl
