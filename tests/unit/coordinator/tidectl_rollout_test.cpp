// tidectl rollout (coordinator/tidectl/rollout.hpp): the start request's
// body from the flags, refusals with the flag that caused them, the status
// text and progress line from the API's rollout JSON, the history table, the
// exit status by state, and the --watch loop on a fake clock and a scripted
// coordinator (changes only, the end states, an unreachable coordinator, the
// 24-hour bound, a rollout replaced by another).
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/tidectl/rollout.hpp"

using nlohmann::json;
using tide::tidectl::canary_figures_text;
using tide::tidectl::FlagError;
using tide::tidectl::Response;
using tide::tidectl::rollout_error_text;
using tide::tidectl::rollout_exit_status;
using tide::tidectl::rollout_flag_of;
using tide::tidectl::rollout_progress_line;
using tide::tidectl::rollout_start_body;
using tide::tidectl::rollout_status_text;
using tide::tidectl::RolloutStartFlags;
using tide::tidectl::watch_rollout;
using tide::tidectl::WatchDeps;
using tide::tidectl::WatchLimits;

namespace {

constexpr std::int64_t kCreatedMs = 1'700'000'000'000;

// A rollout of web:3 -> web:4 over 8 instances, 25 % batches, in its second batch.
json running_rollout() {
  return json::parse(R"({
    "id": "r-1a2b", "group": "web",
    "from": {"launch_configuration": "web", "version": 3},
    "to": {"launch_configuration": "web", "version": 4},
    "state": "running", "phase": "batch", "batch": 2,
    "batch_instances": ["i-5", "i-6"], "canary_instances": [],
    "replaced": 4, "old_at_start": 8, "failures_in_batch": 0, "reason": "",
    "created_ms": 1700000000000, "updated_ms": 1700000600000, "finished_ms": 0,
    "strategy": {"batch": "25%", "max_surge": "1", "min_healthy": "90%",
                 "pause_after_first_batch": false, "pause_between_batches": false,
                 "include_protected": false, "pause_at_percent": [],
                 "bake_ms": 30000, "batch_deadline_ms": 600000,
                 "canary": {"count": 0, "bake_ms": 300000, "min_requests": 20,
                            "max_error_share_increase": 0.01, "max_latency_ratio": 2.0,
                            "latency_floor_ms": 20},
                 "on_failure": "rollback"},
    "progress": {"desired": 8, "target_instances": 4, "old_instances": 4, "serving": 8}
  })");
}

json with(json doc, const json& changes) {
  doc.merge_patch(changes);
  return doc;
}

Response ok(json body) { return Response{200, std::move(body), {}}; }

// A coordinator that answers GET .../rollout from a script (the last answer
// repeats) and GET .../rollouts from `history`, on a clock that sleeping
// moves forward.
struct FakeCoordinator {
  std::vector<Response> script;
  std::size_t next = 0;
  json history = json{{"rollouts", json::array()}};
  std::vector<std::string> paths;
  std::int64_t now_ms = 5'000;

  WatchDeps deps() {
    return WatchDeps{[this](const std::string& path) {
                       paths.push_back(path);
                       if (path.find("/rollouts?") != std::string::npos) return ok(history);
                       const Response answer = script.at(std::min(next, script.size() - 1));
                       ++next;
                       return answer;
                     },
                     [this] { return now_ms; }, [this](std::int64_t ms) { now_ms += ms; }};
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

// ---- the start request --------------------------------------------------------------

TEST_CASE("rollout start without flags sends an empty body: the coordinator's defaults apply", "[tidectl][rollout]") {
  auto body = rollout_start_body(RolloutStartFlags{});
  REQUIRE(body);
  CHECK(*body == json::object());
}

TEST_CASE("rollout start sends every flag under the API's key", "[tidectl][rollout]") {
  RolloutStartFlags flags;
  flags.launch_config = "web:4";
  flags.batch = "2";
  flags.max_surge = "50%";
  flags.min_healthy = "100%";
  flags.pause_after_first = true;
  flags.pause_between = true;
  flags.pause_at = "50, 75";
  flags.bake = "30s";
  flags.deadline = "10m";
  flags.canary = 1;
  flags.canary_bake = "5m";
  flags.canary_min_requests = 100;
  flags.on_failure = "pause";
  flags.include_protected = true;
  auto body = rollout_start_body(flags);
  REQUIRE(body);
  CHECK(*body == json::parse(R"({
    "launch_configuration": "web", "version": 4,
    "batch": "2", "max_surge": "50%", "min_healthy": "100%",
    "pause_after_first_batch": true, "pause_between_batches": true, "pause_at_percent": [50, 75],
    "bake_ms": 30000, "batch_deadline_ms": 600000,
    "canary": {"count": 1, "bake_ms": 300000, "min_requests": 100},
    "on_failure": "pause", "include_protected": true
  })"));
}

TEST_CASE("rollout start takes only a trailing :digits of --launch-config as the version", "[tidectl][rollout]") {
  const auto lc = [](std::string text) {
    RolloutStartFlags flags;
    flags.launch_config = std::move(text);
    return rollout_start_body(flags);
  };
  CHECK(*lc("web") == json{{"launch_configuration", "web"}});
  CHECK(*lc("web:12") == json{{"launch_configuration", "web"}, {"version", 12}});
  // Names may hold ':' themselves.
  CHECK(*lc("web:beta") == json{{"launch_configuration", "web:beta"}});
  CHECK(*lc("team:web:3") == json{{"launch_configuration", "team:web"}, {"version", 3}});
  CHECK(*lc("web:") == json{{"launch_configuration", "web:"}});
  for (const char* bad : {"web:0", ":3", "web:99999999999"}) {
    auto body = lc(bad);
    REQUIRE_FALSE(body);
    CHECK(body.error().flag == "--launch-config");
  }
}

TEST_CASE("rollout start refuses a value it cannot parse, naming the flag", "[tidectl][rollout]") {
  struct Case {
    void (*set)(RolloutStartFlags&);
    const char* flag;
  };
  const std::vector<Case> cases = {
      {[](RolloutStartFlags& f) { f.batch = "25%%"; }, "--batch"},
      {[](RolloutStartFlags& f) { f.batch = "150%"; }, "--batch"},
      {[](RolloutStartFlags& f) { f.max_surge = "-1"; }, "--max-surge"},
      {[](RolloutStartFlags& f) { f.min_healthy = "ninety"; }, "--min-healthy"},
      {[](RolloutStartFlags& f) { f.pause_at = "50,,75"; }, "--pause-at"},
      {[](RolloutStartFlags& f) { f.pause_at = "half"; }, "--pause-at"},
      {[](RolloutStartFlags& f) { f.bake = "30 s"; }, "--bake"},
      {[](RolloutStartFlags& f) { f.deadline = "10y"; }, "--deadline"},
      {[](RolloutStartFlags& f) { f.canary_bake = "5m"; }, "--canary-bake"},
      {[](RolloutStartFlags& f) { f.canary_min_requests = 5; }, "--canary-min-requests"},
      {[](RolloutStartFlags& f) { f.canary = 1; f.canary_bake = "soon"; }, "--canary-bake"},
      {[](RolloutStartFlags& f) { f.on_failure = "retry"; }, "--on-failure"},
  };
  for (const auto& c : cases) {
    RolloutStartFlags flags;
    c.set(flags);
    auto body = rollout_start_body(flags);
    INFO(c.flag);
    REQUIRE_FALSE(body);
    CHECK(body.error().flag == c.flag);
    CHECK_FALSE(body.error().message.empty());
  }
}

TEST_CASE("rollout start's durations take ms, s, m and h", "[tidectl][rollout]") {
  for (const auto& [text, ms] : std::vector<std::pair<std::string, std::int64_t>>{
           {"500ms", 500}, {"30s", 30'000}, {"5m", 300'000}, {"2h", 7'200'000}, {"45", 45'000}}) {
    RolloutStartFlags flags;
    flags.bake = text;
    auto body = rollout_start_body(flags);
    REQUIRE(body);
    CHECK((*body)["bake_ms"] == ms);
  }
}

// ---- refusals ----------------------------------------------------------------------------

TEST_CASE("a refusal names the flag that sets the field, or the field", "[tidectl][rollout]") {
  CHECK(rollout_flag_of("bake_ms") == "--bake");
  CHECK(rollout_flag_of("batch_deadline_ms") == "--deadline");
  CHECK(rollout_flag_of("canary.count") == "--canary");
  CHECK(rollout_flag_of("canary.bake_ms") == "--canary-bake");
  CHECK(rollout_flag_of("version") == "--launch-config");
  CHECK(rollout_flag_of("canary.max_latency_ratio").empty());

  CHECK(rollout_error_text(json{{"error", "batch_deadline_ms: must be longer than bake_ms"},
                                {"field", "batch_deadline_ms"}}) ==
        "batch_deadline_ms: must be longer than bake_ms (--deadline)");
  CHECK(rollout_error_text(json{{"error", "canary.max_latency_ratio: must be within 1..1000"},
                                {"field", "canary.max_latency_ratio"}}) ==
        "canary.max_latency_ratio: must be within 1..1000 (field canary.max_latency_ratio)");
  CHECK(rollout_error_text(json{{"error", "group 'web' has rollout r-1 running: cancel it or wait for it to finish"}}) ==
        "group 'web' has rollout r-1 running: cancel it or wait for it to finish");
  CHECK(rollout_error_text(json()) == "no answer body");
}

// ---- progress and status ----------------------------------------------------------------

TEST_CASE("the progress line counts batches, replacements, serving capacity and both versions", "[tidectl][rollout]") {
  CHECK(rollout_progress_line(running_rollout()) == "batch 2/4  replaced 4 of 8  serving 8/8  new 4  old 4");
  // A count batch size; 7 old instances in batches of 3 is 3 batches.
  CHECK(rollout_progress_line(with(running_rollout(), json::parse(R"({"strategy": {"batch": "3"},
          "batch": 1, "replaced": 1, "old_at_start": 7, "progress": {"desired": 7, "target_instances": 1,
          "old_instances": 6, "serving": 7}})"))) == "batch 1/3  replaced 1 of 7  serving 7/7  new 1  old 6");
  // Before the first batch.
  CHECK(rollout_progress_line(with(running_rollout(), json::parse(R"({"batch": 0, "replaced": 0, "old_at_start": 0,
          "progress": {"target_instances": 0, "old_instances": 8}})"))) ==
        "starting  replaced 0 of 0  serving 8/8  new 0  old 8");
}

TEST_CASE("the progress line shows the canary step and a first batch as large as the canary", "[tidectl][rollout]") {
  const json canary = with(running_rollout(), json::parse(R"({"phase": "canary", "batch": 0, "replaced": 0,
      "canary_instances": ["i-9"], "strategy": {"canary": {"count": 3}},
      "progress": {"target_instances": 1, "old_instances": 8, "serving": 9}})"));
  CHECK(rollout_progress_line(canary) == "canary 1 of 3 launched  replaced 0 of 8  serving 9/8  new 1  old 8");
  // After the canary passed the first batch retires 3 (the canary's size),
  // then 2 a batch: 3 + 2 + 2 + 1 is 4 batches.
  const json first = with(canary, json::parse(R"({"phase": "batch", "batch": 1,
      "canary_instances": ["i-9", "i-10", "i-11"]})"));
  CHECK(rollout_progress_line(first) == "batch 1/4  replaced 0 of 8  serving 9/8  new 1  old 8");
}

TEST_CASE("the progress line while rolling back counts the new version as what is replaced", "[tidectl][rollout]") {
  // target_instances is the rollback's target: the old version.
  const json back = with(running_rollout(), json::parse(R"({"state": "rolling_back", "batch": 1, "replaced": 1,
      "old_at_start": 4, "reason": "batch 2 was not done within 600 s",
      "progress": {"target_instances": 5, "old_instances": 3, "serving": 8}})"));
  CHECK(rollout_progress_line(back) == "rollback batch 1/2  replaced 1 of 4  serving 8/8  new 3  old 5");
}

TEST_CASE("the status shows the header, progress, instances, strategy and times", "[tidectl][rollout]") {
  const std::int64_t now = kCreatedMs + 750'000;
  CHECK(rollout_status_text(running_rollout(), now) ==
        "rollout   r-1a2b  (group web)\n"
        "version   web:3 -> web:4\n"
        "state     running\n"
        "progress  batch 2/4  replaced 4 of 8  serving 8/8  new 4  old 4\n"
        "batch     i-5, i-6\n"
        "strategy  batch 25%  max surge 1  min healthy 90%  bake 30s  deadline 10m  on failure rollback\n"
        "started   12m30s ago\n");

  const json finished = with(running_rollout(), json::parse(R"({"state": "rolled_back", "batch": 2,
      "batch_instances": [], "reason": "the canary failed: error share above the old version's",
      "finished_ms": 1700000540000, "replaced": 4, "old_at_start": 4,
      "strategy": {"pause_after_first_batch": true, "pause_at_percent": [50, 75],
                   "canary": {"count": 1}, "include_protected": true},
      "progress": {"target_instances": 8, "old_instances": 0}})"));
  CHECK(rollout_status_text(finished, now) ==
        "rollout   r-1a2b  (group web)\n"
        "version   web:3 -> web:4  (rolled back to web:3)\n"
        "state     rolled_back\n"
        "reason    the canary failed: error share above the old version's\n"
        "progress  rollback batch 2/2  replaced 4 of 4  serving 8/8  new 0  old 8\n"
        "strategy  batch 25%  max surge 1  min healthy 90%  bake 30s  deadline 10m  on failure rollback\n"
        "          canary 1 for 5m (judged after 20 requests), pause after the first batch, pause at 50%, 75%, "
        "replaces protected instances\n"
        "started   12m30s ago\n"
        "finished  3m30s ago (took 9m0s)\n");
}

TEST_CASE("the canary's figures stand beside the old version's in aligned columns", "[tidectl][rollout]") {
  CHECK(canary_figures_text(running_rollout()).empty());
  const json doc = with(running_rollout(), json::parse(R"({"phase": "canary", "canary_figures": {
      "canary": {"requests": 130, "errors_5xx": 0, "connection_errors": 0, "mean_response_ms": 12.04},
      "baseline": {"requests": 1204, "errors_5xx": 1, "connection_errors": 0, "mean_response_ms": 10.5}}})"));
  const std::string figures =
      "canary figures     canary   old version\n"
      "requests           130      1204\n"
      "5xx responses      0        1\n"
      "connection errors  0        0\n"
      "error share        0.00%    0.08%\n"
      "mean response      12.0 ms  10.5 ms\n";
  CHECK(canary_figures_text(doc) == figures);
  const std::string status = rollout_status_text(doc, kCreatedMs);
  CHECK(status.substr(status.size() - figures.size() - 1) == "\n" + figures);

  // No traffic yet: no share and no mean to show.
  const json quiet = with(doc, json::parse(R"({"canary_figures": {"canary": {"requests": 0, "mean_response_ms": 0},
      "baseline": {"requests": 0}}})"));
  const auto lines = lines_of(canary_figures_text(quiet));
  REQUIRE(lines.size() == 6);
  CHECK(lines[4] == "error share        -       -");
  CHECK(lines[5] == "mean response      -       -");
}

TEST_CASE("the history is a table, newest first as the API gives it", "[tidectl][rollout]") {
  const json body = json{{"rollouts", json::array({with(running_rollout(), json::parse(R"({"id": "r-2"})")),
                                                   with(running_rollout(), json::parse(R"({"id": "r-1",
      "state": "succeeded", "finished_ms": 1700000300000,
      "from": {"version": 2}, "to": {"version": 3}})"))})}};
  std::ostringstream out;
  tide::tidectl::print_rollout_history(out, body, kCreatedMs + 3'600'000);
  CHECK(out.str() ==
        "ID   FROM   TO     STATE      STARTED   FINISHED   REASON\n"
        "r-2  web:3  web:4  running    1h0m ago  -          -\n"
        "r-1  web:2  web:3  succeeded  1h0m ago  55m0s ago  -\n");
  std::ostringstream empty;
  tide::tidectl::print_rollout_history(empty, json{{"rollouts", json::array()}}, 0);
  CHECK(empty.str() == "(none)\n");
}

TEST_CASE("a watch ends 0 on success, 1 on any other end, and goes on in the other states", "[tidectl][rollout]") {
  CHECK(rollout_exit_status("succeeded") == 0);
  CHECK(rollout_exit_status("failed") == 1);
  CHECK(rollout_exit_status("rolled_back") == 1);
  CHECK(rollout_exit_status("cancelled") == 1);
  CHECK_FALSE(rollout_exit_status("running"));
  CHECK_FALSE(rollout_exit_status("paused"));
  CHECK_FALSE(rollout_exit_status("rolling_back"));
  CHECK_FALSE(rollout_exit_status("exploded"));
  CHECK_FALSE(rollout_exit_status(""));
}

// ---- --watch ----------------------------------------------------------------------------

TEST_CASE("watch prints a line only when something changed and ends 0 when the rollout succeeds",
          "[tidectl][rollout][watch]") {
  const json first = running_rollout();
  const json later = with(first, json::parse(R"({"replaced": 5, "updated_ms": 1700000700000,
      "progress": {"target_instances": 5, "old_instances": 3}})"));
  const json done = with(first, json::parse(R"({"state": "succeeded", "batch": 4, "replaced": 8,
      "progress": {"target_instances": 8, "old_instances": 0}, "finished_ms": 1700000900000})"));
  FakeCoordinator coordinator;
  coordinator.script = {ok(first), ok(first), ok(later), ok(later), ok(later), ok(done)};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch_rollout(first, coordinator.deps(), out, err, false) == 0);
  CHECK(lines_of(out.str()) ==
        std::vector<std::string>{
            "+0s       running  batch 2/4  replaced 4 of 8  serving 8/8  new 4  old 4",
            "+3s       running  batch 2/4  replaced 5 of 8  serving 8/8  new 5  old 3",
            "+6s       succeeded  batch 4/4  replaced 8 of 8  serving 8/8  new 8  old 0",
        });
  CHECK(err.str().empty());
  CHECK(coordinator.paths.size() == 6);
  CHECK(coordinator.paths.front() == "/v1/groups/web/rollout");
}

TEST_CASE("watch ends 1 when the rollout fails, rolls back or is cancelled, with the reason",
          "[tidectl][rollout][watch]") {
  for (const char* state : {"failed", "rolled_back", "cancelled"}) {
    const json end = with(running_rollout(), json{{"state", state}, {"reason", "a reason"}});
    FakeCoordinator coordinator;
    coordinator.script = {ok(end)};
    std::ostringstream out;
    std::ostringstream err;
    INFO(state);
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 1);
    CHECK(lines_of(out.str()).back().find(std::string(state) + "  ") != std::string::npos);
    CHECK(lines_of(out.str()).back().find("(a reason)") != std::string::npos);
  }
  // Already over when the watch starts: no request at all.
  FakeCoordinator coordinator;
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch_rollout(with(running_rollout(), json{{"state", "succeeded"}}), coordinator.deps(), out, err, false) == 0);
  CHECK(coordinator.paths.empty());
}

TEST_CASE("watch keeps asking through a coordinator restart and says so once", "[tidectl][rollout][watch]") {
  const json done = with(running_rollout(), json{{"state", "succeeded"}});
  FakeCoordinator coordinator;
  coordinator.script = {Response{0, json(), "cannot reach the coordinator at http://127.0.0.1:7401: Connection"},
                        Response{0, json(), "cannot reach the coordinator at http://127.0.0.1:7401: Connection"},
                        Response{503, json{{"error", "store unavailable"}}, {}}, ok(done)};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 0);
  CHECK(err.str() == "tidectl: cannot reach the coordinator at http://127.0.0.1:7401: Connection; still trying\n");
}

TEST_CASE("watch gives up on a coordinator that stays unreachable, and after its time bound",
          "[tidectl][rollout][watch]") {
  {
    FakeCoordinator coordinator;
    coordinator.script = {Response{0, json(), "cannot reach the coordinator"}};
    std::ostringstream out;
    std::ostringstream err;
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 3);
    CHECK(err.str().find("gave up: no answer from the coordinator for 10m") != std::string::npos);
    // One request a second for ten minutes (and the first failure).
    CHECK(coordinator.paths.size() == 601);
  }
  {
    // A paused rollout that nobody resumes: the watch stops at its bound.
    const json paused = with(running_rollout(), json{{"state", "paused"}, {"reason", "after the first batch"}});
    FakeCoordinator coordinator;
    coordinator.script = {ok(paused)};
    std::ostringstream out;
    std::ostringstream err;
    WatchLimits limits;
    limits.max_ms = 60'000;
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false, limits) == 1);
    CHECK(err.str() == "tidectl: stopped watching after 1m: rollout r-1a2b is paused\n");
    CHECK(coordinator.paths.size() == 60);
    CHECK(lines_of(out.str()).size() == 2);
  }
  {
    // The default bound is a day of one poll a second.
    const json paused = with(running_rollout(), json{{"state", "paused"}});
    FakeCoordinator coordinator;
    coordinator.script = {ok(paused)};
    std::ostringstream out;
    std::ostringstream err;
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 1);
    CHECK(coordinator.paths.size() == 86'400);
  }
}

TEST_CASE("watch stops on a refusal with the coordinator's error", "[tidectl][rollout][watch]") {
  FakeCoordinator coordinator;
  coordinator.script = {Response{404, json{{"error", "no group 'web'"}}, {}}};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 1);
  CHECK(err.str() == "tidectl: no group 'web' (HTTP 404)\n");
}

TEST_CASE("watch finds the end of its rollout in the history when another one took its place",
          "[tidectl][rollout][watch]") {
  const json other = with(running_rollout(), json{{"id", "r-9"}});
  {
    FakeCoordinator coordinator;
    coordinator.script = {ok(other)};
    coordinator.history = json{{"rollouts", json::array({other, with(running_rollout(), json{{"state", "cancelled"},
                                                                                           {"reason", "wrong build"}})})}};
    std::ostringstream out;
    std::ostringstream err;
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 1);
    CHECK(coordinator.paths.back() == "/v1/groups/web/rollouts?limit=50");
    CHECK(lines_of(out.str()).back().find("cancelled  batch 2/4") != std::string::npos);
    CHECK(err.str().empty());
  }
  {
    FakeCoordinator coordinator;
    coordinator.script = {ok(other)};
    std::ostringstream out;
    std::ostringstream err;
    CHECK(watch_rollout(running_rollout(), coordinator.deps(), out, err, false) == 1);
    CHECK(err.str() == "tidectl: the group's rollout is now r-9; r-1a2b is not among its finished rollouts\n");
  }
}

TEST_CASE("watch --json prints the document on one line whenever it changes", "[tidectl][rollout][watch]") {
  const json first = running_rollout();
  const json done = with(first, json{{"state", "succeeded"}});
  FakeCoordinator coordinator;
  coordinator.script = {ok(first), ok(done)};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch_rollout(first, coordinator.deps(), out, err, true) == 0);
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0]) == first);
  CHECK(json::parse(lines[1]) == done);
}
