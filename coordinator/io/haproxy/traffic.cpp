#include "coordinator/io/haproxy/traffic.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "coordinator/io/haproxy/membership.hpp"

namespace tide::haproxy {

std::vector<ServerTraffic> member_traffic(const std::vector<StatRow>& rows,
                                          const std::vector<BackendMembers>& backends) {
  // (proxy, server) → its row; the first one wins should HAProxy ever repeat one.
  std::map<std::pair<std::string_view, std::string_view>, const StatRow*> by_name;
  for (const StatRow& row : rows)
    by_name.emplace(std::pair<std::string_view, std::string_view>(row.proxy, row.server), &row);

  std::vector<ServerTraffic> out;
  for (const BackendMembers& b : backends) {
    std::vector<std::pair<std::uint32_t, const std::string*>> by_slot;
    by_slot.reserve(b.slots.size());
    for (const auto& [id, slot] : b.slots) by_slot.emplace_back(slot, &id);
    std::sort(by_slot.begin(), by_slot.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : *x.second < *y.second;
    });
    for (const auto& [slot, id] : by_slot) {
      const std::string server = slot_name(b.slot_prefix, slot);
      auto it = by_name.find({b.backend, server});
      if (it == by_name.end()) continue;
      const StatRow& r = *it->second;
      ServerTraffic t;
      t.backend = b.backend;
      t.instance_id = *id;
      t.sessions_total = r.stot;
      t.requests_total = r.req_tot;
      t.responses_5xx = r.hrsp_5xx;
      t.connection_errors = r.econ;
      t.response_errors = r.eresp;
      t.queue = r.qcur;
      t.current_sessions = r.scur;
      t.session_rate = r.rate;
      t.mean_response_ms = static_cast<double>(r.rtime_ms);
      t.mean_queue_ms = static_cast<double>(r.qtime_ms);
      t.mean_total_ms = static_cast<double>(r.ttime_ms);
      out.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace tide::haproxy
