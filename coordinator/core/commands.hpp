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
};

struct LbRegister {  // put into rotation (HAProxy: set addr, state ready)
  std::string backend;
  std::string instance_id;
  std::string address;
  std::uint16_t port = 0;
};

struct LbDrain {  // out of rotation, let sessions finish; the shell answers LbDrained
  std::string backend;
  std::string instance_id;
};

struct LbRemove {  // free the slot (HAProxy: state maint)
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

using Command = std::variant<PersistInstance, PersistGroup, RecordActivity, UpdateActivity, Launch,
                             Terminate, LbRegister, LbDrain, LbRemove, SendDrain, SendUndrain>;

}  // namespace tide::coordinator
