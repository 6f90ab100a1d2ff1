// The lifecycle transition table, mirrored from docs/lifecycle.md: every
// (state, event) pair is checked, so a row added, dropped or changed in
// lifecycle.cpp without the docs fails here.
#include <map>
#include <tuple>

#include <catch2/catch.hpp>

#include "coordinator/core/lifecycle.hpp"
#include "coordinator/core/model.hpp"

using namespace tide::coordinator;

namespace {

using S = LifecycleState;
using E = LifecycleEvent;

// Copied from docs/lifecycle.md, "Transition table".
const std::map<std::pair<S, E>, S> kExpected{
    {{S::Pending, E::LaunchSucceeded}, S::Booting},
    {{S::Pending, E::LaunchFailed}, S::LaunchFailed},
    {{S::Booting, E::AgentHello}, S::PendingLaunchHook},
    {{S::PendingLaunchHook, E::LaunchHookDone}, S::Warming},
    {{S::PendingLaunchHook, E::LaunchHookAbandoned}, S::Draining},
    {{S::Warming, E::Ready}, S::InService},
    {{S::InService, E::NotReady}, S::OutOfRotation},
    {{S::OutOfRotation, E::Ready}, S::InService},
    {{S::Booting, E::BeginDrain}, S::Draining},
    {{S::PendingLaunchHook, E::BeginDrain}, S::Draining},
    {{S::Warming, E::BeginDrain}, S::Draining},
    {{S::InService, E::BeginDrain}, S::Draining},
    {{S::OutOfRotation, E::BeginDrain}, S::Draining},
    {{S::Draining, E::DrainComplete}, S::PendingTerminateHook},
    {{S::Draining, E::DetachComplete}, S::Detached},
    {{S::PendingTerminateHook, E::TerminateHookDone}, S::Terminating},
    {{S::Terminating, E::TerminateCompleted}, S::Terminated},
    {{S::Booting, E::Vanished}, S::Terminated},
    {{S::PendingLaunchHook, E::Vanished}, S::Terminated},
    {{S::Warming, E::Vanished}, S::Terminated},
    {{S::InService, E::Vanished}, S::Terminated},
    {{S::OutOfRotation, E::Vanished}, S::Terminated},
    {{S::Draining, E::Vanished}, S::Terminated},
    {{S::PendingTerminateHook, E::Vanished}, S::Terminated},
    {{S::Terminating, E::Vanished}, S::Terminated},
};

constexpr S kStates[] = {S::Pending,  S::Booting,  S::PendingLaunchHook,   S::Warming,
                         S::InService, S::OutOfRotation, S::Draining, S::PendingTerminateHook,
                         S::Terminating, S::Terminated, S::LaunchFailed, S::Detached};
constexpr E kEvents[] = {E::LaunchSucceeded, E::LaunchFailed, E::AgentHello,     E::LaunchHookDone,
                         E::LaunchHookAbandoned, E::Ready,    E::NotReady,       E::BeginDrain,
                         E::DrainComplete,   E::DetachComplete, E::TerminateHookDone, E::TerminateCompleted,
                         E::Vanished};

}  // namespace

TEST_CASE("every (state, event) pair follows the documented transition table", "[lifecycle]") {
  for (S s : kStates) {
    for (E e : kEvents) {
      auto it = kExpected.find({s, e});
      const auto got = transition(s, e);
      INFO(to_string(s) << " + " << to_string(e));
      if (it == kExpected.end()) {
        CHECK_FALSE(got.has_value());
      } else {
        REQUIRE(got.has_value());
        CHECK(*got == it->second);
      }
    }
  }
  CHECK(transition_table().size() == kExpected.size());
}

TEST_CASE("terminal states have no way out", "[lifecycle]") {
  for (S s : kStates) {
    if (!is_terminal(s)) continue;
    for (E e : kEvents) CHECK_FALSE(transition(s, e).has_value());
  }
  CHECK(is_terminal(S::Terminated));
  CHECK(is_terminal(S::LaunchFailed));
  CHECK(is_terminal(S::Detached));
  CHECK_FALSE(is_terminal(S::Draining));
}

TEST_CASE("enum spellings round-trip and unknown text is refused", "[model]") {
  for (S s : kStates) CHECK(from_string<LifecycleState>(to_string(s)) == s);
  CHECK(to_string(S::InService) == "in_service");
  CHECK(to_string(S::PendingTerminateHook) == "pending_terminate_hook");
  CHECK_FALSE(from_string<LifecycleState>("in-service").has_value());
  CHECK_FALSE(from_string<LifecycleState>("").has_value());
  CHECK(from_string<TerminationPolicy>("oldest_launch_configuration") == TerminationPolicy::OldestLaunchConfiguration);
  CHECK(from_string<ActivityStatus>("partially_successful") == ActivityStatus::PartiallySuccessful);
  CHECK(from_string<ActivityType>("terminate_unexpectedly") == ActivityType::TerminateUnexpectedly);
  CHECK(from_string<InstanceOrigin>("attached") == InstanceOrigin::Attached);
  CHECK(from_string<ExitReason>("replace") == ExitReason::Replace);
  CHECK_FALSE(from_string<Health>("sick").has_value());
}

TEST_CASE("group validation enforces min <= desired <= max with a clear message", "[model]") {
  ScalingGroup g;
  g.name = "web";
  g.launch_configuration_id = "web";
  g.min = 1;
  g.max = 5;
  g.desired = 3;
  CHECK(validate(g));
  g.desired = 7;
  auto r = validate(g);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "desired 7 > max 5");
  g.desired = 0;
  REQUIRE_FALSE(validate(g));
  CHECK(validate(g).error().message == "desired 0 < min 1");
  g.desired = 3;
  g.fail_static_share = 0.0;
  CHECK_FALSE(validate(g));
  g.fail_static_share = 0.3;
  g.name.clear();
  CHECK_FALSE(validate(g));
}
