// Inputs of the decision core: what happened (agents, provider, LB, clock).
//
// User requests that can be refused (set desired, attach, detach, protect)
// are Fleet methods returning tl::expected instead (fleet.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "coordinator/core/rollout.hpp"

namespace tide::coordinator {

// The instance's agent said HELLO (first time or after a reconnect). The
// shell has already checked the enrollment token / bound key.
struct AgentHello {
  std::string instance_id;
  std::string agent_key;        // CURVE public key (Z85), bound on first HELLO
  std::string address;          // service address the agent announces; empty: keep
  std::uint16_t port = 0;       // 0: keep
};

// One REPORT. Most change nothing; those produce no commands.
struct AgentReport {
  std::string instance_id;
  bool ready = false;
  bool healthy = true;
  std::string health_reason;    // why unhealthy (the failing check)
  bool draining = false;        // the agent honours a DRAIN
};

// The transport lost the agent (heartbeat liveness expired or GOODBYE).
struct AgentLost {
  std::string instance_id;
  std::string reason;
};

struct LaunchSucceeded {
  std::string instance_id;
  std::string provider_id;
  std::string address;
  std::uint16_t port = 0;
};

struct LaunchFailed {
  std::string instance_id;
  std::string message;          // the provider's error text, recorded in an activity
};

struct TerminateCompleted {
  std::string instance_id;
};

// The provider says the instance is gone although tide did not ask (its
// application exited, the VM was deleted). Before the instance was first in
// service this is a failed launch (retry policy); after, an unexpected
// termination that is replaced at once.
struct InstanceVanished {
  std::string instance_id;
  std::string message;  // the provider's words: exit status, the tail of the output
};

// The LB reports 0 sessions on a draining server (or the drain deadline
// passed, or the drain failed: the slot is out of rotation either way).
struct LbDrained {
  std::string instance_id;
};

// The load balancer refused an LbRegister for good (bad address, no free
// slot, unknown backend): the instance is not in rotation.
struct LbRegisterFailed {
  std::string instance_id;
  std::string message;
};

// The load balancer's per-server figures, sampled by the shell every second
// (a rollout's canary compares the new version's servers with the old ones;
// the request-rate metrics are their differences). Counters that go down
// (HAProxy reloaded) are taken as a restart from 0.
struct InstanceTraffic {
  std::string instance_id;
  TrafficFigures cumulative;  // requests, 5xx, connection errors; mean_response_ms is HAProxy's rolling average
  std::uint64_t queue = 0;     // requests waiting for this server now (qcur)
  std::uint64_t sessions = 0;  // connections open to it now (scur)
};
struct LbTrafficSample {
  std::vector<InstanceTraffic> servers;
};

// The shell's periodic tick: timers (boot timeout, liveness, drain deadline,
// retry back-off) and fail-static recovery are evaluated here.
struct Tick {};

using Event = std::variant<AgentHello, AgentReport, AgentLost, LaunchSucceeded, LaunchFailed,
                           TerminateCompleted, InstanceVanished, LbDrained, LbRegisterFailed, LbTrafficSample, Tick>;

}  // namespace tide::coordinator
