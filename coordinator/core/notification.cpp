#include "coordinator/core/notification.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace tide::coordinator {
namespace {

// A cause or a per-instance message can be long (a provider's whole stderr);
// these caps keep one of them from pushing everything else out of a WeCom
// message.
constexpr std::size_t kWeComCauseMaxBytes = 1024;
constexpr std::size_t kWeComMessageMaxBytes = 256;
constexpr std::size_t kWeComMetadataMaxBytes = 1024;
// Room kept for the "... and N more" line while instance lines are added.
constexpr std::size_t kWeComMoreLineBytes = 48;
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, 3 bytes
constexpr std::string_view kArrow = "\xE2\x86\x92";     // U+2192, 3 bytes

bool is_failure(ActivityStatus status) {
  switch (status) {
    case ActivityStatus::Failed:
    case ActivityStatus::PartiallySuccessful:
      return true;
    case ActivityStatus::Successful:
    case ActivityStatus::Running:
    case ActivityStatus::Cancelled:
      return false;
  }
  return false;
}

bool subscribes(const NotificationTarget& target, std::string_view group, NotificationEvent event) {
  return target.group == group &&
         std::find(target.events.begin(), target.events.end(), event) != target.events.end();
}

// Serialises without throwing on invalid UTF-8 in user text (a cause may
// quote a provider's raw output): bad bytes become U+FFFD.
std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Markdown lines must stay lines: newlines in user text would break the
// quote blocks and lists WeCom renders.
std::string one_line(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  return out;
}

std::string clipped(std::string_view text, std::size_t max_bytes) {
  std::string line = one_line(text);
  if (line.size() <= max_bytes) return line;
  std::string out(utf8_prefix(line, max_bytes - kEllipsis.size()));
  out += kEllipsis;
  return out;
}

std::string event_title(NotificationEvent event) {
  switch (event) {
    case NotificationEvent::ScaleOutSuccessful:
      return "scale-out successful";
    case NotificationEvent::ScaleOutFailed:
      return "scale-out failed";
    case NotificationEvent::ScaleInSuccessful:
      return "scale-in successful";
    case NotificationEvent::ScaleInFailed:
      return "scale-in failed";
    case NotificationEvent::ReplaceSuccessful:
      return "unhealthy instance replaced";
    case NotificationEvent::ReplaceFailed:
      return "unhealthy instance replacement failed";
    case NotificationEvent::HookTimeout:
      return "lifecycle hook timed out";
    case NotificationEvent::RolloutStarted:
      return "rollout started";
    case NotificationEvent::RolloutPaused:
      return "rollout paused";
    case NotificationEvent::RolloutFailed:
      return "rollout failed";
    case NotificationEvent::RolloutRolledBack:
      return "rollout rolled back";
    case NotificationEvent::RolloutSucceeded:
      return "rollout succeeded";
  }
  return "event";
}

// A rollout that stopped short of its target needs someone to look; one that
// started or succeeded does not.
bool needs_attention(NotificationEvent event) {
  switch (event) {
    case NotificationEvent::RolloutPaused:
    case NotificationEvent::RolloutFailed:
    case NotificationEvent::RolloutRolledBack:
      return true;
    case NotificationEvent::RolloutStarted:
    case NotificationEvent::RolloutSucceeded:
    case NotificationEvent::ScaleOutSuccessful:
    case NotificationEvent::ScaleOutFailed:
    case NotificationEvent::ScaleInSuccessful:
    case NotificationEvent::ScaleInFailed:
    case NotificationEvent::ReplaceSuccessful:
    case NotificationEvent::ReplaceFailed:
    case NotificationEvent::HookTimeout:
      return false;
  }
  return false;
}

std::string wrap_wecom(const std::string& content) {
  return dump(nlohmann::json{{"msgtype", "markdown"}, {"markdown", {{"content", content}}}});
}

// Appends instance lines while they fit, then says how many were left out.
void append_instances(std::string& content, const std::vector<ActivityInstance>& instances,
                      std::size_t max_bytes) {
  if (instances.empty()) return;
  content += "\ninstances (" + std::to_string(instances.size()) + "):";
  std::size_t shown = 0;
  for (const auto& instance : instances) {
    std::string line = "\n- `" + clipped(instance.instance_id, 128) + "` ";
    line +=
        instance.ok ? "<font color=\"info\">ok</font>" : "<font color=\"warning\">failed</font>";
    if (!instance.message.empty()) line += ": " + clipped(instance.message, kWeComMessageMaxBytes);
    const bool last = shown + 1 == instances.size();
    const std::size_t reserve = last ? 0 : kWeComMoreLineBytes;
    if (content.size() + line.size() + reserve > max_bytes) break;
    content += line;
    ++shown;
  }
  if (shown < instances.size()) {
    content += "\n" + std::string(kEllipsis) + " and " + std::to_string(instances.size() - shown) +
               " more";
  }
}

std::vector<OutgoingNotification> build(const std::vector<NotificationTarget>& targets,
                                        std::string_view group, NotificationEvent event,
                                        const std::string& generic, const std::string& wecom) {
  std::vector<OutgoingNotification> out;
  for (const auto& target : targets) {
    if (!subscribes(target, group, event)) continue;
    OutgoingNotification message;
    message.target = target.name;
    message.url = target.url;
    switch (target.format) {
      case NotificationFormat::Generic:
        message.content_type = std::string(kGenericContentType);
        message.body = generic;
        break;
      case NotificationFormat::WeCom:
        message.content_type = std::string(kWeComContentType);
        message.body = wecom;
        break;
    }
    out.push_back(std::move(message));
  }
  return out;
}

bool any_format(const std::vector<NotificationTarget>& targets, std::string_view group,
                NotificationEvent event, NotificationFormat format) {
  return std::any_of(targets.begin(), targets.end(), [&](const NotificationTarget& target) {
    return target.format == format && subscribes(target, group, event);
  });
}

}  // namespace

std::optional<NotificationEvent> notification_event_for(const Activity& activity) {
  if (activity.status == ActivityStatus::Running || activity.status == ActivityStatus::Cancelled) {
    return std::nullopt;
  }
  const bool failed = is_failure(activity.status);
  switch (activity.type) {
    case ActivityType::ScaleOut:
      return failed ? NotificationEvent::ScaleOutFailed : NotificationEvent::ScaleOutSuccessful;
    case ActivityType::LaunchFailed:
      // A launch that failed is a failed scale-out whatever status it was
      // recorded with.
      return NotificationEvent::ScaleOutFailed;
    case ActivityType::ScaleIn:
      return failed ? NotificationEvent::ScaleInFailed : NotificationEvent::ScaleInSuccessful;
    case ActivityType::ReplaceUnhealthy:
      return failed ? NotificationEvent::ReplaceFailed : NotificationEvent::ReplaceSuccessful;
    case ActivityType::Attach:
    case ActivityType::Detach:
    case ActivityType::TerminateUnexpectedly:
    case ActivityType::FailStatic:
    case ActivityType::TerminateStray:
    case ActivityType::AdoptInstance:
    case ActivityType::TerminateInstance:
    case ActivityType::Rollout:  // a rollout's notifications come with its notes (NotifyRollout)
    case ActivityType::MetricQuery:
      return std::nullopt;
  }
  return std::nullopt;
}

std::vector<OutgoingNotification> notifications_for(const Activity& activity,
                                                    const std::vector<NotificationTarget>& targets,
                                                    const NotificationOptions& options) {
  const auto event = notification_event_for(activity);
  if (!event) return {};
  // Each body is built once, and only when some target wants that format.
  const std::string generic =
      any_format(targets, activity.group, *event, NotificationFormat::Generic)
          ? generic_body(activity, *event, options)
          : std::string();
  const std::string wecom = any_format(targets, activity.group, *event, NotificationFormat::WeCom)
                                ? wecom_body(activity, *event, options)
                                : std::string();
  return build(targets, activity.group, *event, generic, wecom);
}

std::vector<OutgoingNotification> notifications_for(const HookTimeout& timeout,
                                                    const std::vector<NotificationTarget>& targets,
                                                    const NotificationOptions& options) {
  const auto event = NotificationEvent::HookTimeout;
  const std::string generic = any_format(targets, timeout.group, event, NotificationFormat::Generic)
                                  ? generic_body(timeout, options)
                                  : std::string();
  const std::string wecom = any_format(targets, timeout.group, event, NotificationFormat::WeCom)
                                ? wecom_body(timeout, options)
                                : std::string();
  return build(targets, timeout.group, event, generic, wecom);
}

std::vector<OutgoingNotification> notifications_for(const RolloutNotice& notice,
                                                    const std::vector<NotificationTarget>& targets,
                                                    const NotificationOptions& options) {
  const auto event = notice.event;
  const std::string generic = any_format(targets, notice.group, event, NotificationFormat::Generic)
                                  ? generic_body(notice, options)
                                  : std::string();
  const std::string wecom = any_format(targets, notice.group, event, NotificationFormat::WeCom)
                                ? wecom_body(notice, options)
                                : std::string();
  return build(targets, notice.group, event, generic, wecom);
}

std::string generic_body(const Activity& activity, NotificationEvent event,
                         const NotificationOptions& options) {
  nlohmann::json instances = nlohmann::json::array();
  for (const auto& instance : activity.instances) {
    instances.push_back({{"instance_id", instance.instance_id},
                         {"outcome", instance.ok ? "successful" : "failed"},
                         {"message", instance.message}});
  }
  nlohmann::json body = {
      {"event", to_string(event)},
      {"group", activity.group},
      {"activity_id", activity.id},
      {"activity_type", to_string(activity.type)},
      {"status", to_string(activity.status)},
      {"cause", activity.cause},
      {"start_time", format_rfc3339_utc(activity.start_ms)},
      {"end_time", activity.end_ms ? nlohmann::json(format_rfc3339_utc(*activity.end_ms))
                                   : nlohmann::json(nullptr)},
      {"instances", std::move(instances)},
  };
  if (!options.tide_version.empty()) body["tide_version"] = options.tide_version;
  return dump(body);
}

std::string generic_body(const HookTimeout& timeout, const NotificationOptions& options) {
  nlohmann::json body = {
      {"event", to_string(NotificationEvent::HookTimeout)},
      {"group", timeout.group},
      {"instance_id", timeout.instance_id},
      {"hook", timeout.hook_name},
      {"transition", to_string(timeout.transition)},
      {"default_result", to_string(timeout.default_result)},
      {"notification_metadata", timeout.notification_metadata},
      {"time", format_rfc3339_utc(timeout.at_ms)},
  };
  if (!options.tide_version.empty()) body["tide_version"] = options.tide_version;
  return dump(body);
}

std::string generic_body(const RolloutNotice& notice, const NotificationOptions& options) {
  nlohmann::json body = {
      {"event", to_string(notice.event)},
      {"group", notice.group},
      {"rollout_id", notice.rollout_id},
      {"from", notice.from},
      {"to", notice.to},
      {"batch", notice.batch},
      {"replaced", notice.replaced},
      {"old_at_start", notice.old_at_start},
      {"message", notice.message},
      {"time", format_rfc3339_utc(notice.at_ms)},
  };
  if (!options.tide_version.empty()) body["tide_version"] = options.tide_version;
  return dump(body);
}

std::string wecom_markdown(const Activity& activity, NotificationEvent event,
                           std::size_t max_bytes) {
  const bool failed = is_failure(activity.status) || event == NotificationEvent::ScaleOutFailed ||
                      event == NotificationEvent::ScaleInFailed ||
                      event == NotificationEvent::ReplaceFailed;
  std::string content =
      "### tide: " + event_title(event) + " in group `" + clipped(activity.group, 128) + "`";
  content += "\n> status: <font color=\"";
  content += failed ? "warning" : "info";
  content += "\">" + std::string(to_string(activity.status)) + "</font>";
  content += "\n> activity: `" + clipped(activity.id, 128) + "` (" +
             std::string(to_string(activity.type)) + ")";
  if (!activity.cause.empty())
    content += "\n> cause: " + clipped(activity.cause, kWeComCauseMaxBytes);
  content += "\n> started: " + format_rfc3339_utc(activity.start_ms);
  if (activity.end_ms) content += "\n> ended: " + format_rfc3339_utc(*activity.end_ms);
  append_instances(content, activity.instances, max_bytes);
  // Only a tiny max_bytes gets here over the limit; the prefix is still valid UTF-8.
  if (content.size() > max_bytes) return std::string(utf8_prefix(content, max_bytes));
  return content;
}

std::string wecom_markdown(const HookTimeout& timeout, std::size_t max_bytes) {
  std::string content = "### tide: " + event_title(NotificationEvent::HookTimeout) + " in group `" +
                        clipped(timeout.group, 128) + "`";
  content += "\n> hook: `" + clipped(timeout.hook_name, 128) + "` (" +
             std::string(to_string(timeout.transition)) + ")";
  content += "\n> instance: `" + clipped(timeout.instance_id, 128) + "`";
  content += "\n> default result applied: <font color=\"";
  content += timeout.default_result == HookResult::Abandon ? "warning" : "info";
  content += "\">" + std::string(to_string(timeout.default_result)) + "</font>";
  if (!timeout.notification_metadata.empty()) {
    content += "\n> metadata: " + clipped(timeout.notification_metadata, kWeComMetadataMaxBytes);
  }
  content += "\n> time: " + format_rfc3339_utc(timeout.at_ms);
  if (content.size() > max_bytes) return std::string(utf8_prefix(content, max_bytes));
  return content;
}

std::string wecom_markdown(const RolloutNotice& notice, std::size_t max_bytes) {
  std::string content =
      "### tide: " + event_title(notice.event) + " in group `" + clipped(notice.group, 128) + "`";
  content += "\n> event: <font color=\"";
  content += needs_attention(notice.event) ? "warning" : "info";
  content += "\">" + std::string(to_string(notice.event)) + "</font>";
  content += "\n> rollout: `" + clipped(notice.rollout_id, 128) + "`";
  content += "\n> version: `" + clipped(notice.from, 128) + "` " + std::string(kArrow) + " `" +
             clipped(notice.to, 128) + "`";
  // Before its first batch a rollout has no progress to show.
  std::string progress;
  if (notice.batch > 0) progress = "batch " + std::to_string(notice.batch);
  if (notice.replaced > 0 || notice.old_at_start > 0) {
    if (!progress.empty()) progress += ", ";
    progress += std::to_string(notice.replaced) + " of " + std::to_string(notice.old_at_start) +
                " replaced";
  }
  if (!progress.empty()) content += "\n> progress: " + progress;
  if (!notice.message.empty()) {
    content += "\n> cause: " + clipped(notice.message, kWeComCauseMaxBytes);
  }
  content += "\n> time: " + format_rfc3339_utc(notice.at_ms);
  if (content.size() > max_bytes) return std::string(utf8_prefix(content, max_bytes));
  return content;
}

std::string wecom_body(const Activity& activity, NotificationEvent event,
                       const NotificationOptions& options) {
  return wrap_wecom(wecom_markdown(activity, event, options.wecom_max_content_bytes));
}

std::string wecom_body(const HookTimeout& timeout, const NotificationOptions& options) {
  return wrap_wecom(wecom_markdown(timeout, options.wecom_max_content_bytes));
}

std::string wecom_body(const RolloutNotice& notice, const NotificationOptions& options) {
  return wrap_wecom(wecom_markdown(notice, options.wecom_max_content_bytes));
}

std::string format_rfc3339_utc(TimeMs time_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> time{milliseconds{time_ms}};
  const auto day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss<milliseconds> clock{time - day};
  std::array<char, 40> text{};
  const int n = std::snprintf(
      text.data(), text.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
      static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
      static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
      static_cast<int>(clock.minutes().count()), static_cast<int>(clock.seconds().count()),
      static_cast<int>(clock.subseconds().count()));
  if (n <= 0) return {};
  return std::string(text.data(), std::min(static_cast<std::size_t>(n), text.size() - 1));
}

std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the
  // sequence that would be cut, and cut before it.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) --end;
  return text.substr(0, end);
}

}  // namespace tide::coordinator
