// libFuzzer harness for every admin-API body shape: launch configuration,
// group (create and PATCH), policy, scheduled action, lifecycle hook,
// notification target and rollout request, behind the same gate as the HTTP
// server (the nesting limit on the text, then a non-throwing parse); and the
// stored rollout record's reader.
//
// The first input byte picks the shape (modulo 9, in the order above: 0 launch
// configuration .. 7 rollout request, 8 rollout record); the rest is the
// body. Properties:
//   * nothing throws, crashes or trips a sanitizer;
//   * a refusal says what is wrong (a message);
//   * what is accepted can be shown (to_json); a policy, schedule, hook or
//     notification's JSON (its spec) is accepted again as a body;
//   * an accepted rollout request's strategy passes validate(), and its JSON
//     is accepted again as a body giving the same strategy; an accepted
//     rollout record reads back equal from its own JSON.
// Run (scripts/test does this, seeded with tests/fuzz/json_corpus):
//   build-fuzz/bin/fuzz_json_bodies -max_total_time=30 -max_len=4096 <corpus dir>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"
#include "coordinator/core/rollout.hpp"
#include "coordinator/io/json/json_model.hpp"
#include "coordinator/io/json/nesting.hpp"
#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/json/rollout_json.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_json_bodies: %s\n", what);
  std::abort();
}

template <class T>
void refused_or(const tl::expected<T, tide::coordinator::JsonError>& result, auto accepted) {
  if (!result) {
    if (result.error().message.empty()) fail("a refusal without a message");
    return;
  }
  accepted(*result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tide::coordinator;
  using nlohmann::json;
  if (size == 0) return 0;
  const std::uint8_t shape = data[0] % 9;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (json_nesting_over(text, kMaxJsonDepth)) return 0;  // answered 400 before parsing
  const json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) return 0;
  try {
    switch (shape) {
      case 0:
        refused_or(launch_configuration_from_json(body), [](const LaunchConfiguration& config) {
          (void)validate(config);    // the route validates next
          (void)to_json(config).dump();  // the answer (a view with stored fields: not a request body)
        });
        break;
      case 1:
        refused_or(group_from_json(body), [](const ScalingGroup& group) {
          (void)validate(group);
          (void)to_json(group).dump();
        });
        break;
      case 2: {
        ScalingGroup base;
        base.name = "g";
        base.launch_configuration_id = "web";
        base.max = 4;
        refused_or(patch_group(base, body), [](const ScalingGroup& group) { (void)validate(group); });
        break;
      }
      case 3:
        refused_or(policy_from_json(body, "g"), [](const ScalingPolicy& policy) {
          if (!policy_from_json(to_json(policy), "g")) fail("an accepted policy does not read back");
        });
        break;
      case 4:
        refused_or(scheduled_action_from_json(body, "g"), [](const ScheduledAction& action) {
          if (!scheduled_action_from_json(to_json(action), "g")) fail("an accepted schedule does not read back");
        });
        break;
      case 5:
        refused_or(lifecycle_hook_from_json(body, "g"), [](const LifecycleHook& hook) {
          if (!lifecycle_hook_from_json(to_json(hook), "g")) fail("an accepted hook does not read back");
        });
        break;
      case 6:
        refused_or(notification_target_from_json(body, "g"), [](const NotificationTarget& target) {
          if (!notification_target_from_json(to_json(target), "g")) fail("an accepted notification does not read back");
        });
        break;
      case 7: {
        const auto request = parse_rollout_request(body);
        if (!request) {
          if (request.error().message.empty()) fail("a refusal without a message");
          break;
        }
        if (!validate(request->strategy)) fail("an accepted rollout strategy does not validate");
        const auto again = parse_rollout_request(to_json(request->strategy));
        if (!again || again->strategy != request->strategy) fail("an accepted rollout strategy does not read back");
        break;
      }
      default: {
        const auto record = rollout_from_json(body);
        if (!record) {
          if (record.error().empty()) fail("a refusal without a message");
          break;
        }
        const auto again = rollout_from_json(to_json(*record));
        if (!again || *again != *record) fail("an accepted rollout record does not read back");
        break;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_json_bodies: shape %u threw: %s\n", shape, e.what());
    std::abort();
  }
  return 0;
}
