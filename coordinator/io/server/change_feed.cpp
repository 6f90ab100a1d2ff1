#include "coordinator/io/server/change_feed.hpp"

#include <nlohmann/json.hpp>

namespace tide::coordinator {

ChangeFeed::ChangeFeed(uv_loop_t* loop, std::function<void(const std::string&)> publish,
                       std::function<bool()> listening, std::chrono::milliseconds interval)
    : m_publish(std::move(publish)), m_listening(std::move(listening)), m_interval(interval) {
  m_timer = new uv_timer_t;
  uv_timer_init(loop, m_timer);
  m_timer->data = this;
}

ChangeFeed::~ChangeFeed() {
  uv_timer_stop(m_timer);
  uv_close(reinterpret_cast<uv_handle_t*>(m_timer),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
}

void ChangeFeed::note(std::string_view kind, std::string_view group, std::string_view id) {
  if (!m_listening()) return;
  if (m_pending.size() < kMaxListed) {
    m_pending.emplace(std::string(kind), std::string(group), std::string(id));
  } else {
    m_overflow = true;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(m_timer))) {
    uv_timer_start(
        m_timer, [](uv_timer_t* timer) { static_cast<ChangeFeed*>(timer->data)->flush(); },
        static_cast<std::uint64_t>(m_interval.count()), 0);
  }
}

void ChangeFeed::flush() {
  if (m_pending.empty() && !m_overflow) return;
  const std::string data = event_data(m_pending, m_overflow);
  m_pending.clear();
  m_overflow = false;
  m_publish(data);
}

std::string ChangeFeed::event_data(const std::set<Change>& changes, bool overflow) {
  nlohmann::json list = nlohmann::json::array();
  if (overflow) {
    list.push_back({{"kind", "all"}});
  } else {
    for (const auto& [kind, group, id] : changes) {
      nlohmann::json change{{"kind", kind}};
      if (!group.empty()) change["group"] = group;
      if (!id.empty()) change["id"] = id;
      list.push_back(std::move(change));
    }
  }
  return nlohmann::json{{"changes", std::move(list)}}.dump();
}

}  // namespace tide::coordinator
