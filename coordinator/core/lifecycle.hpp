// The instance lifecycle state machine (DESIGN.md, docs/lifecycle.md).
//
// The table below is the single source of truth: transition() looks it up,
// docs/lifecycle.md prints it, and tests/unit/coordinator mirrors it row by
// row. A (state, event) pair that is not in the table is not a transition
// (std::nullopt): the caller ignores the event for that instance.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

enum class LifecycleEvent : std::uint8_t {
  LaunchSucceeded,      // the provider started it
  LaunchFailed,         // the provider could not start it
  AgentHello,           // the instance's agent said HELLO for the first time
  LaunchHookDone,       // the launch hook completed with "continue" (or no hook is configured)
  LaunchHookAbandoned,  // the launch hook completed with "abandon" or timed out so
  Ready,                // THE RULE holds: latest report ready, healthy, not draining
  NotReady,             // THE RULE no longer holds
  BeginDrain,           // chosen for scale-in, replacement, detach or user termination
  DrainComplete,        // LB reports 0 sessions, or the drain timeout passed
  DetachComplete,       // drained, and the instance leaves the group alive
  TerminateHookDone,    // the terminate hook completed (or no hook is configured)
  TerminateCompleted,   // the provider confirmed termination
  Vanished,             // the provider no longer runs it although tide did not ask
};

[[nodiscard]] std::string_view to_string(LifecycleEvent event);

struct Transition {
  LifecycleState from;
  LifecycleEvent event;
  LifecycleState to;
};

// The transition table (docs/lifecycle.md, "Transition table").
[[nodiscard]] std::span<const Transition> transition_table();

// The next state, or nullopt when `event` does not apply in `from`.
[[nodiscard]] std::optional<LifecycleState> transition(LifecycleState from, LifecycleEvent event);

// No transition leaves a terminal state (terminated, launch_failed, detached).
[[nodiscard]] bool is_terminal(LifecycleState state);

// States in which an instance is a live member of its group (counts toward
// desired unless it is leaving): pending up to out_of_rotation.
[[nodiscard]] bool is_member_state(LifecycleState state);

// States in which the agent has said HELLO and may be in the LB rotation.
[[nodiscard]] bool is_connected_state(LifecycleState state);

}  // namespace tide::coordinator
