#include "coordinator/core/lifecycle.hpp"

namespace tide::coordinator {

namespace {

using S = LifecycleState;
using E = LifecycleEvent;

constexpr std::array kTable{
    Transition{S::Pending, E::LaunchSucceeded, S::Booting},
    Transition{S::Pending, E::LaunchFailed, S::LaunchFailed},

    Transition{S::Booting, E::AgentHello, S::PendingLaunchHook},
    Transition{S::PendingLaunchHook, E::LaunchHookDone, S::Warming},
    Transition{S::PendingLaunchHook, E::LaunchHookAbandoned, S::Draining},

    Transition{S::Warming, E::Ready, S::InService},
    Transition{S::InService, E::NotReady, S::OutOfRotation},
    Transition{S::OutOfRotation, E::Ready, S::InService},

    Transition{S::Booting, E::BeginDrain, S::Draining},
    Transition{S::PendingLaunchHook, E::BeginDrain, S::Draining},
    Transition{S::Warming, E::BeginDrain, S::Draining},
    Transition{S::InService, E::BeginDrain, S::Draining},
    Transition{S::OutOfRotation, E::BeginDrain, S::Draining},

    Transition{S::Draining, E::DrainComplete, S::PendingTerminateHook},
    Transition{S::Draining, E::DetachComplete, S::Detached},
    Transition{S::PendingTerminateHook, E::TerminateHookDone, S::Terminating},
    Transition{S::Terminating, E::TerminateCompleted, S::Terminated},

    Transition{S::Booting, E::Vanished, S::Terminated},
    Transition{S::PendingLaunchHook, E::Vanished, S::Terminated},
    Transition{S::Warming, E::Vanished, S::Terminated},
    Transition{S::InService, E::Vanished, S::Terminated},
    Transition{S::OutOfRotation, E::Vanished, S::Terminated},
    Transition{S::Draining, E::Vanished, S::Terminated},
    Transition{S::PendingTerminateHook, E::Vanished, S::Terminated},
    Transition{S::Terminating, E::Vanished, S::Terminated},
};

}  // namespace

std::string_view to_string(LifecycleEvent event) {
  switch (event) {
    case E::LaunchSucceeded: return "launch_succeeded";
    case E::LaunchFailed: return "launch_failed";
    case E::AgentHello: return "agent_hello";
    case E::LaunchHookDone: return "launch_hook_done";
    case E::LaunchHookAbandoned: return "launch_hook_abandoned";
    case E::Ready: return "ready";
    case E::NotReady: return "not_ready";
    case E::BeginDrain: return "begin_drain";
    case E::DrainComplete: return "drain_complete";
    case E::DetachComplete: return "detach_complete";
    case E::TerminateHookDone: return "terminate_hook_done";
    case E::TerminateCompleted: return "terminate_completed";
    case E::Vanished: return "vanished";
  }
  return "unknown";
}

std::span<const Transition> transition_table() { return kTable; }

std::optional<LifecycleState> transition(LifecycleState from, LifecycleEvent event) {
  for (const Transition& t : kTable) {
    if (t.from == from && t.event == event) return t.to;
  }
  return std::nullopt;
}

bool is_terminal(LifecycleState state) {
  switch (state) {
    case S::Terminated:
    case S::LaunchFailed:
    case S::Detached:
      return true;
    case S::Pending:
    case S::Booting:
    case S::PendingLaunchHook:
    case S::Warming:
    case S::InService:
    case S::OutOfRotation:
    case S::Draining:
    case S::PendingTerminateHook:
    case S::Terminating:
      return false;
  }
  return false;
}

bool is_member_state(LifecycleState state) {
  switch (state) {
    case S::Pending:
    case S::Booting:
    case S::PendingLaunchHook:
    case S::Warming:
    case S::InService:
    case S::OutOfRotation:
      return true;
    case S::Draining:
    case S::PendingTerminateHook:
    case S::Terminating:
    case S::Terminated:
    case S::LaunchFailed:
    case S::Detached:
      return false;
  }
  return false;
}

bool is_connected_state(LifecycleState state) {
  switch (state) {
    case S::PendingLaunchHook:
    case S::Warming:
    case S::InService:
    case S::OutOfRotation:
      return true;
    case S::Pending:
    case S::Booting:
    case S::Draining:
    case S::PendingTerminateHook:
    case S::Terminating:
    case S::Terminated:
    case S::LaunchFailed:
    case S::Detached:
      return false;
  }
  return false;
}

}  // namespace tide::coordinator
