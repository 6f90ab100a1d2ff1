// Slot allocation and membership reconcile for one HAProxy backend.
//
// A backend has N pre-declared slots (`server-template <prefix> 1-N ...`),
// named <prefix>1 .. <prefix>N. tide never adds or deletes servers (Debian's
// HAProxy 2.6 can crash under that churn, NOTES.md); it points a slot at an
// instance and moves it between ready, drain and maint.
//
// plan_backend() is a pure function: given what tide wants (instance id →
// address:port), what it last assigned (instance id → slot) and what HAProxy
// reports (`show servers state`), it returns the assignment to keep and the
// runtime commands that repair every difference: an HAProxy restart (all
// slots back in maint at the placeholder address), a manual change (a slot
// put in maint or drain by hand, re-addressed), or a slot serving an address
// nobody asked for. No I/O here, so the unit tests cover every case.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/io/haproxy/runtime_text.hpp"

namespace tide::haproxy {

struct WantedMember {
  std::string address;     // IP literal
  std::uint16_t port = 0;  // 1..65535
  // false keeps the slot reserved and addressed but out of rotation (maint):
  // the instance exists but its application is not ready.
  bool in_rotation = true;
  friend bool operator==(const WantedMember&, const WantedMember&) = default;
};

struct SlotCommand {
  enum class Kind : std::uint8_t { SetAddress, SetReady, SetDrain, SetMaint };
  Kind kind = Kind::SetMaint;
  std::string backend;
  std::string server;      // slot name, e.g. "s3"
  std::string address;     // SetAddress only
  std::uint16_t port = 0;  // SetAddress only
  // The runtime API line, e.g. "set server be/s3 state ready".
  [[nodiscard]] std::string render() const;
  friend bool operator==(const SlotCommand&, const SlotCommand&) = default;
};

struct BackendPlanInput {
  std::string backend;
  std::string slot_prefix = "s";
  std::uint32_t slot_count = 0;
  std::map<std::string, WantedMember> wanted;              // instance id → endpoint
  std::map<std::string, std::uint32_t> assignment;         // instance id → slot (1-based), tide's memory
  std::vector<ServerState> actual;                         // `show servers state <backend>`
  std::set<std::uint32_t> busy_slots;                      // slots with an operation in progress: left alone
};

struct BackendPlan {
  std::map<std::string, std::uint32_t> assignment;  // instance id → slot after the commands
  std::vector<SlotCommand> commands;                // in order; per slot: maint, addr, ready/drain
  std::vector<std::string> unplaced;                // wanted ids that found no free slot
  std::vector<std::string> notes;                   // one human sentence per repair, for logs
};

[[nodiscard]] BackendPlan plan_backend(const BackendPlanInput& in);

// "s7" with prefix "s" → 7; nullopt for names outside the slot range.
[[nodiscard]] std::optional<std::uint32_t> slot_index(const std::string& server, const std::string& prefix,
                                                      std::uint32_t slot_count);
[[nodiscard]] std::string slot_name(const std::string& prefix, std::uint32_t slot);

// Lowest slot in 1..slot_count that is in neither set; nullopt when full.
[[nodiscard]] std::optional<std::uint32_t> choose_free_slot(std::uint32_t slot_count,
                                                            const std::set<std::uint32_t>& taken);

}  // namespace tide::haproxy
