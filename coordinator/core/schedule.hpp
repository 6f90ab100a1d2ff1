// Evaluation of scheduled actions (ScheduledAction, policy_model.hpp): which
// actions are due at `now_ms`, and what one does to a group's capacity.
// docs/schedules.md describes the rules for users.
//
// Pure: the shell compiles each action once (cron text -> CronExpr, zone
// name -> zone via find_zone), calls due_actions() on every tick with the
// time it read, applies what is due in the order returned, and persists
// `last_fired_ms = fire_ms` for EVERY returned item, fired or skipped, so
// neither runs twice.
//
// Missed fires: the fires of an action are looked for in
// (last_fired_ms, now_ms] — or [created_ms, now_ms] before its first fire —
// so fires missed while the coordinator was down collapse into the latest
// one. It runs if it is at most `grace_ms` old (default 5 min) and is
// reported as skipped otherwise: a capacity change hours late (say the
// 11:00 "lunch" scale-out applied at 15:00) is worse than none.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <date/tz.h>
#include <tl/expected.hpp>

#include "coordinator/core/cron.hpp"
#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

// How late a missed fire may still run when the coordinator starts.
inline constexpr std::int64_t kDefaultScheduleGraceMs = 5 * 60'000;

// A scheduled action ready for evaluation.
struct ScheduleEntry {
  ScheduledAction action;                // action.last_fired_ms is the persisted state
  CronExpr cron;                         // parsed action.cron; unused for a one-shot
  const date::time_zone* zone = nullptr; // action.time_zone, never null after compile_schedule
  TimeMs created_ms = 0;                 // fires before this are not the action's own
};

// Parses the cron text (if any) and binds the zone. The error is the parse
// error's sentence, e.g. "hour field: 24 is out of range 0-23 in '24'".
[[nodiscard]] tl::expected<ScheduleEntry, std::string> compile_schedule(const ScheduledAction& action,
                                                                         const date::time_zone& zone,
                                                                         TimeMs created_ms);

// One action to apply (or to log as skipped).
struct DueAction {
  std::string group;
  std::string name;
  TimeMs fire_ms = 0;      // the (latest) fire time this stands for
  std::int64_t late_ms = 0;  // now_ms - fire_ms
  std::optional<std::uint32_t> min;
  std::optional<std::uint32_t> max;
  std::optional<std::uint32_t> desired;
  bool skipped = false;    // older than the grace window: do not apply, record it
  std::string cron;        // "" for a one-shot, for the cause text
  std::string time_zone;
  const date::time_zone* zone = nullptr;
  friend bool operator==(const DueAction&, const DueAction&) = default;
};

// Fire times of an entry in ms: the cron's (or the one-shot's start_ms)
// limited to [start_ms, end_ms] (both inclusive).
[[nodiscard]] std::optional<TimeMs> next_fire(const ScheduleEntry& entry, TimeMs after_ms);
[[nodiscard]] std::optional<TimeMs> latest_fire(const ScheduleEntry& entry, TimeMs after_ms, TimeMs up_to_ms);

// The actions due at now_ms, at most one per entry, sorted by fire_ms then
// group and name (apply in this order: a later action of the same group
// wins). grace_ms >= 0.
[[nodiscard]] std::vector<DueAction> due_actions(std::span<const ScheduleEntry> entries, TimeMs now_ms,
                                                 std::int64_t grace_ms = kDefaultScheduleGraceMs);

// When the shell should evaluate next: the earliest fire after now_ms over
// all entries (nullopt: none within ~5 years). A timer set to this replaces
// polling.
[[nodiscard]] std::optional<TimeMs> next_wakeup(std::span<const ScheduleEntry> entries, TimeMs now_ms);

// True when the entry can never fire again after now_ms (a one-shot that
// fired or was skipped, or end_ms passed): the shell may delete it, as the
// clouds do with one-shot actions.
[[nodiscard]] bool finished(const ScheduleEntry& entry, TimeMs now_ms);

// ---- applying an action -------------------------------------------------

struct Capacity {
  std::uint32_t min = 0;
  std::uint32_t max = 0;
  std::uint32_t desired = 0;
  friend bool operator==(const Capacity&, const Capacity&) = default;
};

struct CapacityChange {
  Capacity before;
  Capacity after;
  bool changed = false;
  std::string cause;  // e.g. "scheduled action lunch-start (0 11 * * * Asia/Shanghai) fired at
                      // 2026-11-27 11:00 CST: min 2 -> 4, desired 2 -> 4"
};

// Sets what the action gives, then keeps min <= desired <= max the way AWS
// does: a new min above desired raises desired, a new max below desired
// lowers it. A given desired outside the resulting [min, max] is clamped
// (and the cause says so). Fails, naming the values, when the result would
// have min > max (e.g. the action sets min 5 and the group's max is 3): the
// shell records a failed activity.
[[nodiscard]] tl::expected<CapacityChange, std::string> apply_scheduled_action(const Capacity& current,
                                                                               const DueAction& due);

// "2026-11-27 11:00 CST" in the action's zone (UTC when zone is null).
[[nodiscard]] std::string format_local_minute(TimeMs time_ms, const date::time_zone* zone);

}  // namespace tide::coordinator
