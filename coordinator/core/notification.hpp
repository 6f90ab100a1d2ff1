// Notifications: which scaling events a finished activity (or a lifecycle
// hook that ran out of time, or a step of a rollout) raises, and the webhook
// messages they become for a group's notification targets
// (docs/notifications.md holds the body schemas).
//
// Pure: plain inputs, plain messages out. The shell (coordinator/io/notify)
// sends the messages; nothing here reads a clock or touches a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

// A lifecycle hook held an instance past its heartbeat timeout; the hook's
// default result has been applied.
struct HookTimeout {
  std::string group;
  std::string instance_id;
  std::string hook_name;
  HookTransition transition = HookTransition::Launching;
  HookResult default_result = HookResult::Continue;  // the result that was applied
  std::string notification_metadata;                 // the hook's, passed on verbatim
  TimeMs at_ms = 0;                                  // when the time-out was handled
  friend bool operator==(const HookTimeout&, const HookTimeout&) = default;
};

// A rollout started, paused, failed, was rolled back or succeeded
// (docs/rollout.md). `event` is one of the rollout_* events; the counts are
// the rollout's at that moment.
struct RolloutNotice {
  std::string group;
  std::string rollout_id;
  NotificationEvent event = NotificationEvent::RolloutStarted;
  std::string from;                // the version the rollout replaces, "app:1"
  std::string to;                  // the version it rolls out, "app:2"
  std::uint32_t batch = 0;         // 1-based batch number; 0 before the first batch
  std::uint32_t replaced = 0;      // instances replaced so far in the current direction
  std::uint32_t old_at_start = 0;  // instances to replace when the current direction started
  std::string message;             // the cause: why it paused, failed or rolled back
  TimeMs at_ms = 0;                // when it happened
  friend bool operator==(const RolloutNotice&, const RolloutNotice&) = default;
};

// One webhook request to make: POST `body` with `content_type` to `url`.
struct OutgoingNotification {
  std::string target;  // NotificationTarget::name, for logs
  std::string url;
  std::string content_type;
  std::string body;
  friend bool operator==(const OutgoingNotification&, const OutgoingNotification&) = default;
};

// WeCom's group robot refuses markdown content longer than this (bytes of
// UTF-8, per its API documentation).
inline constexpr std::size_t kWeComMaxContentBytes = 4096;

struct NotificationOptions {
  std::string tide_version;  // "" = the generic body has no tide_version field
  std::size_t wecom_max_content_bytes = kWeComMaxContentBytes;
};

// The event a finished activity raises, or nullopt: still running, cancelled,
// or a type no target can subscribe to (attach, detach, ...).
//   scale_out, launch_failed -> scale_out_successful | scale_out_failed
//   scale_in                 -> scale_in_successful  | scale_in_failed
//   replace_unhealthy        -> replace_successful   | replace_failed
// A partially successful activity counts as failed: someone has to look.
[[nodiscard]] std::optional<NotificationEvent> notification_event_for(const Activity& activity);

// The messages for every target of the activity's group that subscribes to
// the event it raises, in the order of `targets` (targets of other groups are
// skipped, so the caller may pass all of them). Empty when it raises none.
[[nodiscard]] std::vector<OutgoingNotification> notifications_for(
    const Activity& activity, const std::vector<NotificationTarget>& targets,
    const NotificationOptions& options = {});

// The same for a lifecycle-hook time-out (event hook_timeout).
[[nodiscard]] std::vector<OutgoingNotification> notifications_for(
    const HookTimeout& timeout, const std::vector<NotificationTarget>& targets,
    const NotificationOptions& options = {});

// The same for a rollout notice (its own event).
[[nodiscard]] std::vector<OutgoingNotification> notifications_for(
    const RolloutNotice& notice, const std::vector<NotificationTarget>& targets,
    const NotificationOptions& options = {});

// ---- bodies (exposed for tests and docs) ------------------------------------

inline constexpr std::string_view kGenericContentType = "application/json";
inline constexpr std::string_view kWeComContentType = "application/json";

// tide's JSON body ("generic"); schema in docs/notifications.md.
[[nodiscard]] std::string generic_body(const Activity& activity, NotificationEvent event,
                                       const NotificationOptions& options = {});
[[nodiscard]] std::string generic_body(const HookTimeout& timeout,
                                       const NotificationOptions& options = {});
[[nodiscard]] std::string generic_body(const RolloutNotice& notice,
                                       const NotificationOptions& options = {});

// WeCom group-robot body: {"msgtype":"markdown","markdown":{"content":"..."}}
// with the content kept within options.wecom_max_content_bytes.
[[nodiscard]] std::string wecom_body(const Activity& activity, NotificationEvent event,
                                     const NotificationOptions& options = {});
[[nodiscard]] std::string wecom_body(const HookTimeout& timeout,
                                     const NotificationOptions& options = {});
[[nodiscard]] std::string wecom_body(const RolloutNotice& notice,
                                     const NotificationOptions& options = {});

// The markdown text inside a WeCom body.
[[nodiscard]] std::string wecom_markdown(const Activity& activity, NotificationEvent event,
                                         std::size_t max_bytes = kWeComMaxContentBytes);
[[nodiscard]] std::string wecom_markdown(const HookTimeout& timeout,
                                         std::size_t max_bytes = kWeComMaxContentBytes);
[[nodiscard]] std::string wecom_markdown(const RolloutNotice& notice,
                                         std::size_t max_bytes = kWeComMaxContentBytes);

// ---- helpers ----------------------------------------------------------------

// "2024-05-01T03:00:00.250Z": RFC 3339, UTC, millisecond precision.
[[nodiscard]] std::string format_rfc3339_utc(TimeMs time_ms);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end
// inside a multi-byte UTF-8 sequence.
[[nodiscard]] std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

}  // namespace tide::coordinator
