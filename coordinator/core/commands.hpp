// Outputs of the decision core: what the shell must do, in order.
//
// Crash safety: a Persist* command always precedes the provider call it
// enables (PersistInstance{pending, idempotency key} before Launch;
// PersistInstance{terminating} before Terminate). The shell executes commands
// in order and stops at the first persist that fails. LB commands need no
// persist: the LB is reconciled on restart (Fleet::restore).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "coordinator/core/model.hpp"
#include "coordinator/core/notification.hpp"
#include "coordinator/core/policy_model.hpp"
#include "coordinator/core/rollout.hpp"

namespace tide::coordinator {

struct PersistInstance {
  Instance instance;  // full row (runtime fields are not stored)
};

struct PersistGroup {
  ScalingGroup group;
};

struct RecordActivity {  // insert a new activity row
  Activity activity;
};

struct UpdateActivity {  // overwrite an activity row (status, end, messages)
  Activity activity;
};

struct Launch {
  std::string instance_id;
  std::string group;
  std::string idempotency_key;    // the provider launches at most once per key
  std::string launch_configuration_id;
  std::uint32_t launch_configuration_version = 0;
  std::string enrollment_token;   // one-time secret for the agent; never persisted in clear
};

struct Terminate {
  std::string instance_id;
  std::string group;
  std::string provider_id;        // may be empty for a launch whose result was lost
  std::string idempotency_key;
  InstanceOrigin origin = InstanceOrigin::Launched;
  // How long the provider lets the application stop before it is killed
  // (the group's drain timeout, capped at kMaxTerminateGraceMs).
  std::uint32_t grace_ms = 0;
};

inline constexpr std::uint32_t kMaxTerminateGraceMs = 30'000;

// Put into rotation (HAProxy: point a slot at address:port, state ready).
// The shell answers LbRegisterFailed when the load balancer refuses it for
// good (a bad address, no free slot, an unknown backend); a transient failure
// (HAProxy restarting) is repaired by the shell's periodic LB reconcile.
struct LbRegister {
  std::string backend;
  std::string instance_id;
  std::string address;
  std::uint16_t port = 0;
};

// Out of rotation: stop new requests, let those in flight finish for at most
// timeout_ms, then free the slot. The shell answers LbDrained either way.
struct LbDrain {
  std::string backend;
  std::string instance_id;
  std::uint32_t timeout_ms = 0;
};

// Out of rotation at once and the slot freed, without waiting for sessions:
// the instance is gone (vanished, or its address now belongs to another).
// A no-op when the instance holds no slot.
struct LbRemove {
  std::string backend;
  std::string instance_id;
};

struct SendDrain {  // protocol DRAIN to the agent
  std::string instance_id;
  std::uint32_t timeout_ms = 0;
};

struct SendUndrain {  // protocol UNDRAIN: the agent drains but tide no longer wants it
  std::string instance_id;
};

// Which agents may connect (the ZAP handler's allow-list, DESIGN.md
// "Security"): `agent_key` is bound to the instance (empty: none yet), and
// `enrollment_open` says the instance still waits for its first HELLO, so an
// unknown key may try its enrollment token. Emitted whenever either changes;
// `revoke` drops the instance from the list (it left the fleet).
struct SetAgentAccess {
  std::string instance_id;
  std::string agent_key;
  bool enrollment_open = false;
  bool revoke = false;
};

// Protocol HOOK_RUN to the agent: run its lifecycle-hook script `script`
// and answer HOOK_RESULT, which the shell hands to
// Fleet::on_hook_script_result(instance_id, script, ...). Sent when a hook
// with an agent_script starts holding the instance, and again on every HELLO
// while the action is pending (a reconnected agent may have lost the run),
// so scripts must be idempotent.
struct RunHook {
  std::string instance_id;
  std::string script;          // LifecycleHook::agent_script = HOOK_RUN.hook_name
  std::string hook_name;       // LifecycleHook::name, for logs
  HookTransition transition = HookTransition::Launching;  // HOOK_RUN.transition: to_string(transition)
  std::uint32_t timeout_ms = 0;  // the hook's heartbeat timeout (<= 7,200,000)
};

// A lifecycle hook ran out of time and its default result was applied: send
// the hook_timeout notification (notifications_for(timeout, targets)).
struct NotifyHookTimeout {
  HookTimeout timeout;
};

// Insert or overwrite the rollout's row (docs/rollout.md): written at every
// change of its state, batch or progress, and once more when it finishes.
struct PersistRollout {
  Rollout rollout;
};

// A rollout started, paused, failed, rolled back or succeeded: send its
// notification (notifications_for(notice, targets), docs/notifications.md).
struct NotifyRollout {
  RolloutNotice notice;
};

using Command = std::variant<PersistInstance, PersistGroup, RecordActivity, UpdateActivity, Launch,
                             Terminate, LbRegister, LbDrain, LbRemove, SendDrain, SendUndrain, SetAgentAccess,
                             RunHook, NotifyHookTimeout, PersistRollout, NotifyRollout>;

}  // namespace tide::coordinator
