#include "coordinator/core/schedule.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <tuple>

namespace tide::coordinator {
namespace {

using std::chrono::milliseconds;

bool one_shot(const ScheduleEntry& entry) { return entry.action.cron.empty(); }

// Fires are looked for after this (exclusive): the last one acted on, or
// just before the action existed.
TimeMs evaluated_until(const ScheduleEntry& entry) {
  TimeMs lower = entry.created_ms - 1;
  if (entry.action.last_fired_ms) lower = std::max(lower, *entry.action.last_fired_ms);
  return lower;
}

}  // namespace

tl::expected<ScheduleEntry, std::string> compile_schedule(const ScheduledAction& action, const date::time_zone& zone,
                                                           TimeMs created_ms) {
  ScheduleEntry entry;
  entry.action = action;
  entry.zone = &zone;
  entry.created_ms = created_ms;
  if (!action.cron.empty()) {
    auto parsed = parse_cron(action.cron);
    if (!parsed) return tl::make_unexpected(parsed.error().message);
    entry.cron = std::move(*parsed);
  }
  return entry;
}

std::optional<TimeMs> next_fire(const ScheduleEntry& entry, TimeMs after_ms) {
  const auto& action = entry.action;
  if (one_shot(entry)) {
    if (action.start_ms && *action.start_ms > after_ms) return action.start_ms;
    return std::nullopt;
  }
  if (entry.zone == nullptr) return std::nullopt;
  TimeMs lower = after_ms;
  // start_ms is inclusive: a fire exactly at start_ms counts.
  if (action.start_ms) lower = std::max(lower, *action.start_ms - 1);
  const auto fire = next_fire(entry.cron, *entry.zone, lower);
  if (!fire || (action.end_ms && *fire > *action.end_ms)) return std::nullopt;
  return fire;
}

std::optional<TimeMs> latest_fire(const ScheduleEntry& entry, TimeMs after_ms, TimeMs up_to_ms) {
  const auto& action = entry.action;
  if (one_shot(entry)) {
    if (action.start_ms && *action.start_ms > after_ms && *action.start_ms <= up_to_ms) return action.start_ms;
    return std::nullopt;
  }
  if (entry.zone == nullptr) return std::nullopt;
  TimeMs lower = after_ms;
  TimeMs upper = up_to_ms;
  if (action.start_ms) lower = std::max(lower, *action.start_ms - 1);
  if (action.end_ms) upper = std::min(upper, *action.end_ms);
  return latest_fire(entry.cron, *entry.zone, lower, upper);
}

std::vector<DueAction> due_actions(std::span<const ScheduleEntry> entries, TimeMs now_ms, std::int64_t grace_ms) {
  std::vector<DueAction> due;
  for (const auto& entry : entries) {
    const auto fire = latest_fire(entry, evaluated_until(entry), now_ms);
    if (!fire) continue;
    const auto& action = entry.action;
    DueAction item;
    item.group = action.group;
    item.name = action.name;
    item.fire_ms = *fire;
    item.late_ms = now_ms - *fire;
    item.min = action.min;
    item.max = action.max;
    item.desired = action.desired;
    item.skipped = item.late_ms > grace_ms;
    item.cron = action.cron;
    item.time_zone = action.time_zone;
    item.zone = entry.zone;
    due.push_back(std::move(item));
  }
  std::sort(due.begin(), due.end(), [](const DueAction& a, const DueAction& b) {
    return std::tie(a.fire_ms, a.group, a.name) < std::tie(b.fire_ms, b.group, b.name);
  });
  return due;
}

std::optional<TimeMs> next_wakeup(std::span<const ScheduleEntry> entries, TimeMs now_ms) {
  std::optional<TimeMs> earliest;
  for (const auto& entry : entries) {
    const auto fire = next_fire(entry, now_ms);
    if (fire && (!earliest || *fire < *earliest)) earliest = fire;
  }
  return earliest;
}

bool finished(const ScheduleEntry& entry, TimeMs now_ms) {
  return !next_fire(entry, now_ms) && !latest_fire(entry, evaluated_until(entry), now_ms);
}

std::string format_local_minute(TimeMs time_ms, const date::time_zone* zone) {
  const auto t = date::floor<std::chrono::seconds>(date::sys_time<milliseconds>{milliseconds{time_ms}});
  if (zone == nullptr) return date::format("%Y-%m-%d %H:%M UTC", t);
  return date::format("%Y-%m-%d %H:%M %Z", date::zoned_seconds{zone, t});
}

tl::expected<CapacityChange, std::string> apply_scheduled_action(const Capacity& current, const DueAction& due) {
  std::string cause = "scheduled action " + due.name + " (";
  cause += due.cron.empty() ? "once" : due.cron;
  cause += " " + due.time_zone + ") fired at " + format_local_minute(due.fire_ms, due.zone);
  if (due.late_ms >= 60'000) cause += ", applied " + duration_text(due.late_ms) + " late";

  Capacity after = current;
  if (due.min) after.min = *due.min;
  if (due.max) after.max = *due.max;
  if (after.min > after.max) {
    return tl::make_unexpected(cause + ": not applied: min " + std::to_string(after.min) + " > max " +
                               std::to_string(after.max) + (due.max ? "" : " (the group's max)"));
  }
  const std::uint32_t asked = due.desired.value_or(current.desired);
  after.desired = std::clamp(asked, after.min, after.max);

  std::vector<std::string> changes;
  const auto note = [&](const char* field, std::uint32_t from, std::uint32_t to) {
    if (from != to) changes.push_back(std::string(field) + " " + std::to_string(from) + " -> " + std::to_string(to));
  };
  note("min", current.min, after.min);
  note("max", current.max, after.max);
  note("desired", current.desired, after.desired);
  if (due.desired && after.desired != asked) {
    const std::string clamp = " (asked " + std::to_string(asked) + ", clamped to " +
                              (asked < after.min ? "min " : "max ") + std::to_string(after.desired) + ")";
    if (after.desired != current.desired) {
      changes.back() += clamp;
    } else {
      changes.push_back("desired stays " + std::to_string(after.desired) + clamp);
    }
  }
  CapacityChange change;
  change.before = current;
  change.after = after;
  change.changed = after != current;
  if (changes.empty()) {
    cause += ": no change (min " + std::to_string(after.min) + ", max " + std::to_string(after.max) + ", desired " +
             std::to_string(after.desired) + ")";
  } else {
    cause += ": ";
    for (std::size_t i = 0; i < changes.size(); ++i) cause += (i == 0 ? "" : ", ") + changes[i];
  }
  change.cause = std::move(cause);
  return change;
}

}  // namespace tide::coordinator
