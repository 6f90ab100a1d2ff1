// The HAProxy load-balancer driver: puts instances into a backend's slots and
// takes them out, over the runtime API (RuntimeClient), and repairs the
// difference between what tide wants and what HAProxy has (plan_backend).
//
// Operations on one slot run one after the other (a register waits for a
// drain of the same slot to finish); operations on different slots overlap.
// Each operation reports how long it took, from the call to HAProxy's last
// answer.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/io/haproxy/membership.hpp"
#include "coordinator/io/haproxy/runtime_client.hpp"

namespace tide::haproxy {

struct DriverError {
  enum class Kind : std::uint8_t {
    Api,              // the runtime API failed; api_kind says how
    UnknownBackend,
    UnknownInstance,  // drain of an instance that has no slot
    NoFreeSlot,
    BadArgument,      // address or port refused before sending
  };
  Kind kind = Kind::Api;
  ApiError::Kind api_kind = ApiError::Kind::Connect;
  std::string detail;
};

[[nodiscard]] std::string_view to_string(DriverError::Kind kind);

struct OpResult {
  std::string backend;
  std::string instance_id;
  std::uint32_t slot = 0;        // 1-based slot index
  std::string server;            // slot name, e.g. "s3"
  std::uint64_t elapsed_us = 0;  // call → last answer from HAProxy
  bool forced = false;           // drain deadline passed: sessions were shut down
};

// A slot found serving (or draining) an instance when tide took over a running
// HAProxy: what adopt_members() hands back to the caller.
struct AdoptedMember {
  std::string backend;
  std::string instance_id;
  std::uint32_t slot = 0;    // 1-based
  bool in_rotation = false;  // ready; false: draining or in maintenance
};

struct ReconcileResult {
  std::size_t commands = 0;             // repairs sent
  std::vector<std::string> notes;       // one sentence per repair
  std::vector<std::string> unplaced;    // "backend/id" that found no slot
};

class Driver {
 public:
  struct Backend {
    std::string name;
    std::string slot_prefix = "s";
    std::uint32_t slot_count = 64;
  };
  struct Options {
    std::vector<Backend> backends;
    std::uint64_t drain_poll_ms = 20;         // `show stat` interval while draining
    std::uint64_t drain_timeout_ms = 30000;   // default deadline of drain_instance
  };
  using OpCallback = std::function<void(tl::expected<OpResult, DriverError>)>;
  using ReconcileCallback = std::function<void(tl::expected<ReconcileResult, DriverError>)>;

  Driver(uv_loop_t* loop, RuntimeClient& client, Options options);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Points a free slot (or the instance's own) at address:port and puts it in
  // rotation: `set server be/sN addr A port P` + `set server be/sN state ready`.
  // Another member of the backend at the same address:port can only be an
  // instance that is gone (the provider reused its address): it is taken
  // out first, so that no two slots ever point at one endpoint.
  void register_instance(const std::string& backend, const std::string& instance_id, const std::string& address,
                         std::uint16_t port, OpCallback cb);

  // Takes the instance's slot out of rotation at once (`state maint`, no
  // waiting for sessions) and frees it: the instance is gone. Succeeds
  // without a command when the instance holds no slot.
  void remove_instance(const std::string& backend, const std::string& instance_id, OpCallback cb);

  // `state drain`, then polls `show stat` until the slot has no session and
  // no queued request, or until timeout_ms (then `shutdown sessions server`);
  // then `state maint` and the slot is free. timeout_ms 0: the default.
  void drain_instance(const std::string& backend, const std::string& instance_id, std::uint64_t timeout_ms,
                      OpCallback cb);

  // Reads `show servers state` of every backend and repairs the differences
  // (after an HAProxy restart or reload, or a manual change).
  void reconcile(ReconcileCallback cb);

  // Takes over the membership of an HAProxy that was already running (the
  // coordinator restarted and kept it): reads `show servers state` of every
  // backend and, for each slot that points at an endpoint `resolve` names
  // (backend, address, port → instance id; nullopt = nobody tide knows),
  // remembers the slot and wants the endpoint as HAProxy has it, so neither
  // a register nor the reconcile moves a live slot. Call before any
  // register or reconcile.
  using Resolver =
      std::function<std::optional<std::string>(const std::string& backend, const std::string& address, std::uint16_t port)>;
  using AdoptCallback = std::function<void(tl::expected<std::vector<AdoptedMember>, DriverError>)>;
  void adopt_members(Resolver resolve, AdoptCallback cb);

  // Runs reconcile() every interval_ms (0 stops it). Errors are retried on the
  // next tick; `on_result` (optional) sees every outcome.
  void reconcile_every(std::uint64_t interval_ms, ReconcileCallback on_result = nullptr);

  // instance id → slot, per backend.
  [[nodiscard]] const std::map<std::string, std::uint32_t>& assignment(const std::string& backend) const;
  [[nodiscard]] const std::map<std::string, WantedMember>& wanted(const std::string& backend) const;

 private:
  struct BackendState {
    Backend spec;
    std::map<std::string, WantedMember> wanted;
    std::map<std::string, std::uint32_t> assignment;
    std::map<std::uint32_t, std::deque<std::function<void()>>> slot_ops;  // head is running
  };
  using Step = std::function<void(RuntimeClient::Answer)>;

  using StepDone = std::function<void(std::optional<DriverError>)>;
  using BackendStep = std::function<void(BackendState&, std::vector<ServerState> actual, const StepDone& done)>;

  BackendState* find(const std::string& backend);
  // Reads `show servers state` of every backend and hands each parsed answer
  // to `step`, which calls its `done` when finished; `done` then sees the
  // first error of all. unknown_is_empty: a backend HAProxy does not have
  // is skipped instead of failing.
  void for_each_backend_state(bool unknown_is_empty, BackendStep step, StepDone done);
  void enqueue(BackendState& b, std::uint32_t slot, std::function<void()> op);
  void finish(BackendState& b, std::uint32_t slot);
  void run_commands(std::vector<std::string> commands, std::function<void(tl::expected<void, DriverError>)> done);
  void drain_poll(BackendState& b, const std::string& id, std::uint32_t slot, std::uint64_t started_ns,
                  std::uint64_t deadline_ms, OpCallback cb);
  void fail_later(OpCallback cb, DriverError error);

  uv_loop_t* m_loop;
  RuntimeClient& m_client;
  Options m_options;
  std::map<std::string, BackendState> m_backends;
  uv_timer_t* m_reconcile_timer = nullptr;
  ReconcileCallback m_on_reconcile;
  bool m_reconciling = false;
  std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);  // guards timers' callbacks after destruction
};

}  // namespace tide::haproxy
