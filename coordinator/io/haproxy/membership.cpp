#include "coordinator/io/haproxy/membership.hpp"

#include <charconv>

namespace tide::haproxy {

std::string SlotCommand::render() const {
  std::string target = "set server " + backend + "/" + server;
  switch (kind) {
    case Kind::SetAddress: return target + " addr " + address + " port " + std::to_string(port);
    case Kind::SetReady: return target + " state ready";
    case Kind::SetDrain: return target + " state drain";
    case Kind::SetMaint: return target + " state maint";
  }
  return target;
}

std::optional<std::uint32_t> slot_index(const std::string& server, const std::string& prefix,
                                        std::uint32_t slot_count) {
  if (server.size() <= prefix.size() || server.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const char* first = server.data() + prefix.size();
  const char* last = server.data() + server.size();
  if (*first == '0') return std::nullopt;
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(first, last, v);
  if (ec != std::errc{} || p != last || v == 0 || v > slot_count) return std::nullopt;
  return v;
}

std::string slot_name(const std::string& prefix, std::uint32_t slot) { return prefix + std::to_string(slot); }

std::optional<std::uint32_t> choose_free_slot(std::uint32_t slot_count, const std::set<std::uint32_t>& taken) {
  for (std::uint32_t s = 1; s <= slot_count; ++s) {
    if (!taken.contains(s)) return s;
  }
  return std::nullopt;
}

BackendPlan plan_backend(const BackendPlanInput& in) {
  BackendPlan plan;
  std::map<std::uint32_t, const ServerState*> actual;  // slot → state
  for (const auto& st : in.actual) {
    if (st.backend != in.backend) continue;
    if (auto idx = slot_index(st.server, in.slot_prefix, in.slot_count)) actual[*idx] = &st;
  }
  auto holds = [&](std::uint32_t slot, const WantedMember& m) {
    auto it = actual.find(slot);
    return it != actual.end() && it->second->address == m.address && it->second->port == m.port;
  };

  std::set<std::uint32_t> claimed = in.busy_slots;
  std::map<std::string, std::uint32_t> chosen;
  std::vector<std::string> pending;  // wanted ids still without a slot

  // 1. Keep remembered slots that still hold the member's endpoint, and slots
  //    with a busy operation (the operation owns them).
  for (const auto& [id, m] : in.wanted) {
    auto a = in.assignment.find(id);
    if (a != in.assignment.end() && a->second >= 1 && a->second <= in.slot_count &&
        (holds(a->second, m) || in.busy_slots.contains(a->second))) {
      chosen[id] = a->second;
      claimed.insert(a->second);
    } else {
      pending.push_back(id);
    }
  }
  // 2. Adopt a slot that already holds the endpoint (tide restarted and lost
  //    its memory; HAProxy kept going). Prefer one that takes traffic.
  std::vector<std::string> still;
  for (const auto& id : pending) {
    const auto& m = in.wanted.at(id);
    std::optional<std::uint32_t> best;
    for (const auto& [slot, st] : actual) {
      if (claimed.contains(slot) || !holds(slot, m)) continue;
      if (!best || (st->in_rotation() && !actual[*best]->in_rotation())) best = slot;
    }
    if (best) {
      chosen[id] = *best;
      claimed.insert(*best);
    } else {
      still.push_back(id);
    }
  }
  // 3. Reuse the remembered slot even though HAProxy lost its address (it
  //    restarted), else take the lowest free slot.
  pending.clear();
  for (const auto& id : still) {
    auto a = in.assignment.find(id);
    if (a != in.assignment.end() && a->second >= 1 && a->second <= in.slot_count && !claimed.contains(a->second)) {
      chosen[id] = a->second;
      claimed.insert(a->second);
    } else {
      pending.push_back(id);
    }
  }
  for (const auto& id : pending) {
    // Prefer slots that are not serving anything, so that an unknown but live
    // slot is taken out by step 5 rather than silently re-pointed.
    std::set<std::uint32_t> taken = claimed;
    for (const auto& [slot, st] : actual) {
      if (st->in_rotation()) taken.insert(slot);
    }
    auto slot = choose_free_slot(in.slot_count, taken);
    if (!slot) slot = choose_free_slot(in.slot_count, claimed);
    if (!slot) {
      plan.unplaced.push_back(id);
      plan.notes.push_back("no free slot in backend " + in.backend + " for " + id);
      continue;
    }
    chosen[id] = *slot;
    claimed.insert(*slot);
  }

  // 4. Bring each chosen slot to the wanted endpoint and state.
  for (const auto& [id, slot] : chosen) {
    if (in.busy_slots.contains(slot)) continue;
    const auto& m = in.wanted.at(id);
    const std::string server = slot_name(in.slot_prefix, slot);
    auto it = actual.find(slot);
    const ServerState* st = it == actual.end() ? nullptr : it->second;
    auto cmd = [&](SlotCommand::Kind k) {
      SlotCommand c{k, in.backend, server, {}, 0};
      if (k == SlotCommand::Kind::SetAddress) {
        c.address = m.address;
        c.port = m.port;
      }
      plan.commands.push_back(std::move(c));
    };
    if (st == nullptr) {
      plan.notes.push_back(in.backend + "/" + server + " is missing from HAProxy's state; " + id + " cannot be placed");
      plan.unplaced.push_back(id);
      continue;
    }
    if (!holds(slot, m)) {
      // Never re-point a slot that takes traffic: stop it first.
      if (!st->in_maint()) cmd(SlotCommand::Kind::SetMaint);
      cmd(SlotCommand::Kind::SetAddress);
      if (m.in_rotation) cmd(SlotCommand::Kind::SetReady);
      plan.notes.push_back(in.backend + "/" + server + " pointed at " + m.address + ":" + std::to_string(m.port) +
                           " for " + id + " (held " + st->address + ":" + std::to_string(st->port) + ")");
    } else if (m.in_rotation && !st->in_rotation()) {
      cmd(SlotCommand::Kind::SetReady);
      plan.notes.push_back(in.backend + "/" + server + " put back in rotation for " + id);
    } else if (!m.in_rotation && !st->in_maint()) {
      cmd(SlotCommand::Kind::SetMaint);
      plan.notes.push_back(in.backend + "/" + server + " taken out of rotation for " + id);
    }
    plan.assignment[id] = slot;
  }

  // 5. Any other slot that takes traffic serves something tide did not ask
  //    for: take it out. maint stops new requests; those in flight finish.
  for (const auto& [slot, st] : actual) {
    if (claimed.contains(slot) || st->in_maint()) continue;
    plan.commands.push_back(SlotCommand{SlotCommand::Kind::SetMaint, in.backend, st->server, {}, 0});
    plan.notes.push_back(in.backend + "/" + st->server + " served unknown " + st->address + ":" +
                         std::to_string(st->port) + "; set to maint");
  }
  // Busy slots keep their assignment untouched.
  for (const auto& [id, slot] : chosen) {
    if (in.busy_slots.contains(slot)) plan.assignment[id] = slot;
  }
  return plan;
}

}  // namespace tide::haproxy
