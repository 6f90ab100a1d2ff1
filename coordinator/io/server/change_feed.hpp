// ChangeFeed: what changed in the fleet, for the web console's live pages.
//
// The loop notes every change as it executes it (an instance's record, a
// group, an activity, a rollout, a specification); the feed coalesces them
// and publishes one "change" event at most every `interval` naming what
// changed, never the records themselves: a console reads the few it shows.
// With no console listening nothing is kept.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include <uv.h>

namespace tide::coordinator {

class ChangeFeed {
 public:
  // `publish(data)` sends one event's JSON; `listening()` says whether anyone
  // would receive it.
  ChangeFeed(uv_loop_t* loop, std::function<void(const std::string&)> publish,
             std::function<bool()> listening,
             std::chrono::milliseconds interval = std::chrono::milliseconds(200));
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // kind: "group", "instance", "activity", "rollout", "spec",
  // "launch_configuration". `id` names the instance, activity or spec.
  void note(std::string_view kind, std::string_view group, std::string_view id = {});

  // More distinct changes than this in one interval are sent as one
  // {"kind": "all"}: the console reads its page afresh.
  static constexpr std::size_t kMaxListed = 200;

  // The event's data for a set of changes (also used by the tests).
  using Change = std::tuple<std::string, std::string, std::string>;  // kind, group, id
  [[nodiscard]] static std::string event_data(const std::set<Change>& changes, bool overflow);

 private:
  void flush();

  std::function<void(const std::string&)> m_publish;
  std::function<bool()> m_listening;
  std::chrono::milliseconds m_interval;
  uv_timer_t* m_timer = nullptr;
  std::set<Change> m_pending;
  bool m_overflow = false;
};

}  // namespace tide::coordinator
