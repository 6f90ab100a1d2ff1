// coordinator/core/notification: event mapping, message selection, both body
// formats parsed back field by field (activities, hook time-outs, rollout
// notices), event names, and WeCom's byte limit.
#include "coordinator/core/notification.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tide::coordinator;
using nlohmann::json;

namespace {

// 2024-05-01T03:00:00.250Z
constexpr TimeMs kStart = 1'714'532'400'250;

Activity make_activity(ActivityType type, ActivityStatus status) {
  Activity activity;
  activity.id = "a-0123456789abcdef";
  activity.group = "web";
  activity.type = type;
  activity.status = status;
  activity.cause = "alarm policy cpu-high: cpu average 87.5 % > 80 % for 2 × 10 s";
  activity.start_ms = kStart;
  if (status != ActivityStatus::Running) activity.end_ms = kStart + 61'500;
  activity.instances = {{"i-1", "", true}, {"i-2", "provider: quota exceeded", false}};
  return activity;
}

NotificationTarget make_target(std::string name, NotificationFormat format,
                               std::vector<NotificationEvent> events, std::string group = "web") {
  NotificationTarget target;
  target.group = std::move(group);
  target.name = std::move(name);
  target.url = "http://127.0.0.1:9/" + target.name;
  target.format = format;
  target.events = std::move(events);
  return target;
}

const std::vector<NotificationEvent> kRolloutEvents = {
    NotificationEvent::RolloutStarted,   NotificationEvent::RolloutPaused,
    NotificationEvent::RolloutFailed,    NotificationEvent::RolloutRolledBack,
    NotificationEvent::RolloutSucceeded,
};

RolloutNotice make_notice(NotificationEvent event) {
  RolloutNotice notice;
  notice.group = "web";
  notice.rollout_id = "r-0123456789abcdef";
  notice.event = event;
  notice.from = "app:1";
  notice.to = "app:2";
  notice.batch = 2;
  notice.replaced = 3;
  notice.old_at_start = 10;
  notice.message = "batch 2 was not done within 600 s";
  notice.at_ms = kStart;
  return notice;
}

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    if (c < 0x80U) {
      length = 1;
    } else if ((c & 0xE0U) == 0xC0U) {
      length = 2;
    } else if ((c & 0xF0U) == 0xE0U) {
      length = 3;
    } else if ((c & 0xF8U) == 0xF0U) {
      length = 4;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0U) != 0x80U) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

TEST_CASE("notification_event_for maps every finished activity type and status", "[notification]") {
  using T = ActivityType;
  using S = ActivityStatus;
  using E = NotificationEvent;
  struct Row {
    T type;
    S status;
    std::optional<E> event;
  };
  const std::vector<Row> table = {
      {T::ScaleOut, S::Successful, E::ScaleOutSuccessful},
      {T::ScaleOut, S::Failed, E::ScaleOutFailed},
      {T::ScaleOut, S::PartiallySuccessful, E::ScaleOutFailed},
      {T::ScaleOut, S::Running, std::nullopt},
      {T::ScaleOut, S::Cancelled, std::nullopt},
      {T::ScaleIn, S::Successful, E::ScaleInSuccessful},
      {T::ScaleIn, S::Failed, E::ScaleInFailed},
      {T::ScaleIn, S::PartiallySuccessful, E::ScaleInFailed},
      {T::ScaleIn, S::Running, std::nullopt},
      {T::ReplaceUnhealthy, S::Successful, E::ReplaceSuccessful},
      {T::ReplaceUnhealthy, S::Failed, E::ReplaceFailed},
      {T::ReplaceUnhealthy, S::PartiallySuccessful, E::ReplaceFailed},
      {T::ReplaceUnhealthy, S::Cancelled, std::nullopt},
      {T::LaunchFailed, S::Failed, E::ScaleOutFailed},
      {T::LaunchFailed, S::Successful, E::ScaleOutFailed},
      {T::LaunchFailed, S::Running, std::nullopt},
      {T::Attach, S::Successful, std::nullopt},
      {T::Detach, S::Successful, std::nullopt},
      {T::TerminateUnexpectedly, S::Successful, std::nullopt},
      {T::FailStatic, S::Failed, std::nullopt},
      {T::TerminateStray, S::Successful, std::nullopt},
      {T::AdoptInstance, S::Successful, std::nullopt},
      {T::TerminateInstance, S::Failed, std::nullopt},
  };
  for (const auto& row : table) {
    INFO(to_string(row.type) << " / " << to_string(row.status));
    CHECK(notification_event_for(make_activity(row.type, row.status)) == row.event);
  }
}

TEST_CASE("notifications_for picks the group's subscribed targets in order", "[notification]") {
  const std::vector<NotificationTarget> targets = {
      make_target("ops-wecom", NotificationFormat::WeCom,
                  {NotificationEvent::ScaleOutFailed, NotificationEvent::ScaleOutSuccessful}),
      make_target("only-failures", NotificationFormat::Generic,
                  {NotificationEvent::ScaleOutFailed}),
      make_target("other-group", NotificationFormat::Generic,
                  {NotificationEvent::ScaleOutSuccessful}, "api"),
      make_target("audit", NotificationFormat::Generic,
                  {NotificationEvent::ScaleOutSuccessful, NotificationEvent::HookTimeout}),
  };
  const Activity ok = make_activity(ActivityType::ScaleOut, ActivityStatus::Successful);
  const auto messages = notifications_for(ok, targets, {});
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].target == "ops-wecom");
  CHECK(messages[0].url == "http://127.0.0.1:9/ops-wecom");
  CHECK(messages[0].content_type == "application/json");
  CHECK(json::parse(messages[0].body).at("msgtype") == "markdown");
  CHECK(messages[1].target == "audit");
  CHECK(json::parse(messages[1].body).at("event") == "scale_out_successful");

  SECTION("a failed scale-out reaches the failure subscribers") {
    const auto failed = notifications_for(
        make_activity(ActivityType::ScaleOut, ActivityStatus::PartiallySuccessful), targets, {});
    REQUIRE(failed.size() == 2);
    CHECK(failed[0].target == "ops-wecom");
    CHECK(failed[1].target == "only-failures");
  }
  SECTION("activities that raise nothing produce no message") {
    CHECK(notifications_for(make_activity(ActivityType::Attach, ActivityStatus::Successful),
                            targets, {})
              .empty());
    CHECK(notifications_for(make_activity(ActivityType::ScaleOut, ActivityStatus::Running), targets,
                            {})
              .empty());
  }
  SECTION("hook time-outs go to hook_timeout subscribers only") {
    HookTimeout timeout{"web", "i-7", "warmup", HookTransition::Launching, HookResult::Abandon,
                        "",    kStart};
    const auto hook = notifications_for(timeout, targets, {});
    REQUIRE(hook.size() == 1);
    CHECK(hook[0].target == "audit");
    CHECK(json::parse(hook[0].body).at("event") == "hook_timeout");
    timeout.group = "api";
    CHECK(notifications_for(timeout, targets, {}).empty());
  }
}

TEST_CASE("generic body carries every activity field", "[notification]") {
  const Activity activity =
      make_activity(ActivityType::ScaleOut, ActivityStatus::PartiallySuccessful);
  const json body =
      json::parse(generic_body(activity, NotificationEvent::ScaleOutFailed, {"0.1.0"}));
  CHECK(body.at("event") == "scale_out_failed");
  CHECK(body.at("group") == "web");
  CHECK(body.at("activity_id") == "a-0123456789abcdef");
  CHECK(body.at("activity_type") == "scale_out");
  CHECK(body.at("status") == "partially_successful");
  CHECK(body.at("cause") == activity.cause);
  CHECK(body.at("start_time") == "2024-05-01T03:00:00.250Z");
  CHECK(body.at("end_time") == "2024-05-01T03:01:01.750Z");
  CHECK(body.at("tide_version") == "0.1.0");
  const json& instances = body.at("instances");
  REQUIRE(instances.size() == 2);
  CHECK(instances[0].at("instance_id") == "i-1");
  CHECK(instances[0].at("outcome") == "successful");
  CHECK(instances[0].at("message") == "");
  CHECK(instances[1].at("instance_id") == "i-2");
  CHECK(instances[1].at("outcome") == "failed");
  CHECK(instances[1].at("message") == "provider: quota exceeded");

  SECTION("no version field unless one is given; end_time null while unknown") {
    Activity open = activity;
    open.end_ms.reset();
    const json plain = json::parse(generic_body(open, NotificationEvent::ScaleOutFailed));
    CHECK_FALSE(plain.contains("tide_version"));
    CHECK(plain.at("end_time").is_null());
  }
  SECTION("invalid UTF-8 in a cause becomes U+FFFD instead of an exception") {
    Activity bad = activity;
    bad.cause = "exit \xFF\xFE";
    const json parsed = json::parse(generic_body(bad, NotificationEvent::ScaleOutFailed));
    CHECK(parsed.at("cause") == "exit \xEF\xBF\xBD\xEF\xBF\xBD");
  }
}

TEST_CASE("generic body for a hook time-out", "[notification]") {
  const HookTimeout timeout{"web",
                            "i-7",
                            "drain-check",
                            HookTransition::Terminating,
                            HookResult::Abandon,
                            R"({"ticket":"OPS-1"})",
                            kStart};
  const json body = json::parse(generic_body(timeout, {}));
  CHECK(body.at("event") == "hook_timeout");
  CHECK(body.at("group") == "web");
  CHECK(body.at("instance_id") == "i-7");
  CHECK(body.at("hook") == "drain-check");
  CHECK(body.at("transition") == "terminating");
  CHECK(body.at("default_result") == "abandon");
  CHECK(body.at("notification_metadata") == R"({"ticket":"OPS-1"})");
  CHECK(body.at("time") == "2024-05-01T03:00:00.250Z");
  CHECK_FALSE(body.contains("tide_version"));
}

TEST_CASE("WeCom body is a markdown robot message", "[notification]") {
  const Activity activity = make_activity(ActivityType::ScaleOut, ActivityStatus::Successful);
  const json body = json::parse(wecom_body(activity, NotificationEvent::ScaleOutSuccessful, {}));
  CHECK(body.size() == 2);
  CHECK(body.at("msgtype") == "markdown");
  const std::string content = body.at("markdown").at("content");
  CHECK(content.rfind("### tide: scale-out successful in group `web`", 0) == 0);
  CHECK(content.find("<font color=\"info\">successful</font>") != std::string::npos);
  CHECK(content.find("a-0123456789abcdef") != std::string::npos);
  CHECK(content.find("cause: " + activity.cause) != std::string::npos);
  CHECK(content.find("started: 2024-05-01T03:00:00.250Z") != std::string::npos);
  CHECK(content.find("ended: 2024-05-01T03:01:01.750Z") != std::string::npos);
  CHECK(content.find("instances (2):") != std::string::npos);
  CHECK(content.find("- `i-1` <font color=\"info\">ok</font>") != std::string::npos);
  CHECK(content.find("- `i-2` <font color=\"warning\">failed</font>: provider: quota exceeded") !=
        std::string::npos);

  SECTION("failures are coloured as warnings") {
    const Activity failed = make_activity(ActivityType::ScaleIn, ActivityStatus::Failed);
    const std::string text = wecom_markdown(failed, NotificationEvent::ScaleInFailed);
    CHECK(text.find("<font color=\"warning\">failed</font>") != std::string::npos);
    CHECK(text.find("scale-in failed") != std::string::npos);
  }
  SECTION("a newline in the cause does not break the quote block") {
    Activity multi = activity;
    multi.cause = "line one\nline two";
    const std::string text = wecom_markdown(multi, NotificationEvent::ScaleOutSuccessful);
    CHECK(text.find("cause: line one line two") != std::string::npos);
  }
}

TEST_CASE("WeCom body for a hook time-out", "[notification]") {
  const HookTimeout timeout{
      "web",          "i-7", "warmup", HookTransition::Launching, HookResult::Continue,
      "ticket OPS-1", kStart};
  const std::string content =
      json::parse(wecom_body(timeout, {})).at("markdown").at("content").get<std::string>();
  CHECK(content.rfind("### tide: lifecycle hook timed out in group `web`", 0) == 0);
  CHECK(content.find("hook: `warmup` (launching)") != std::string::npos);
  CHECK(content.find("instance: `i-7`") != std::string::npos);
  CHECK(content.find("default result applied: <font color=\"info\">continue</font>") !=
        std::string::npos);
  CHECK(content.find("metadata: ticket OPS-1") != std::string::npos);
  CHECK(content.find("time: 2024-05-01T03:00:00.250Z") != std::string::npos);
}

TEST_CASE("WeCom content stays under 4,096 bytes and never cuts a character", "[notification]") {
  Activity activity = make_activity(ActivityType::ScaleOut, ActivityStatus::PartiallySuccessful);
  activity.instances.clear();
  // 500 instances whose messages are Chinese text (3 bytes a character).
  for (int i = 0; i < 500; ++i) {
    activity.instances.push_back({"i-" + std::to_string(i), "启动失败：配额不足", i % 2 == 0});
  }
  activity.cause = std::string(3000, 'x') + "扩容";  // longer than the cause cap
  const std::string content = wecom_markdown(activity, NotificationEvent::ScaleOutFailed);
  CHECK(content.size() <= kWeComMaxContentBytes);
  CHECK(content.size() > kWeComMaxContentBytes - 300);  // it used the room, not a stub
  CHECK(valid_utf8(content));
  CHECK(content.find("instances (500):") != std::string::npos);
  CHECK(content.find("- `i-0` ") != std::string::npos);
  CHECK(content.find("- `i-499` ") == std::string::npos);
  const auto more = content.rfind("\xE2\x80\xA6 and ");
  REQUIRE(more != std::string::npos);
  // The count of left-out lines matches the lines present.
  std::size_t shown = 0;
  for (std::size_t at = content.find("\n- `"); at != std::string::npos;
       at = content.find("\n- `", at + 1)) {
    ++shown;
  }
  CHECK(content.substr(more) == "\xE2\x80\xA6 and " + std::to_string(500 - shown) + " more");

  SECTION("the whole body parses and its content is the same text") {
    const json body = json::parse(wecom_body(activity, NotificationEvent::ScaleOutFailed, {}));
    CHECK(body.at("markdown").at("content") == content);
  }
  SECTION("a smaller limit is honoured too, even one that cuts the header") {
    for (std::size_t limit : {1000U, 200U, 50U, 7U}) {
      const std::string small = wecom_markdown(activity, NotificationEvent::ScaleOutFailed, limit);
      INFO(limit);
      CHECK(small.size() <= limit);
      CHECK(valid_utf8(small));
    }
  }
  SECTION("few instances are all listed") {
    activity.instances.resize(3);
    const std::string short_content = wecom_markdown(activity, NotificationEvent::ScaleOutFailed);
    CHECK(short_content.find("- `i-2` ") != std::string::npos);
    CHECK(short_content.find(" more") == std::string::npos);
  }
}

TEST_CASE("utf8_prefix cuts before an incomplete character", "[notification]") {
  const std::string text = "ab扩容";  // 2 + 3 + 3 bytes
  CHECK(utf8_prefix(text, 100) == text);
  CHECK(utf8_prefix(text, 8) == text);
  CHECK(utf8_prefix(text, 7) == "ab扩");
  CHECK(utf8_prefix(text, 5) == "ab扩");
  CHECK(utf8_prefix(text, 4) == "ab");
  CHECK(utf8_prefix(text, 2) == "ab");
  CHECK(utf8_prefix(text, 0).empty());
  const std::string emoji = "\xF0\x9F\x98\x80!";  // 4-byte character
  CHECK(utf8_prefix(emoji, 3).empty());
  CHECK(utf8_prefix(emoji, 4) == "\xF0\x9F\x98\x80");
}

TEST_CASE("format_rfc3339_utc", "[notification]") {
  CHECK(format_rfc3339_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_utc(kStart) == "2024-05-01T03:00:00.250Z");
  CHECK(format_rfc3339_utc(951'782'400'000) == "2000-02-29T00:00:00.000Z");
  CHECK(format_rfc3339_utc(-1) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("notification event names round-trip, rollout events included", "[notification]") {
  using E = NotificationEvent;
  const std::vector<std::pair<E, std::string_view>> names = {
      {E::ScaleOutSuccessful, "scale_out_successful"},
      {E::ScaleOutFailed, "scale_out_failed"},
      {E::ScaleInSuccessful, "scale_in_successful"},
      {E::ScaleInFailed, "scale_in_failed"},
      {E::ReplaceSuccessful, "replace_successful"},
      {E::ReplaceFailed, "replace_failed"},
      {E::HookTimeout, "hook_timeout"},
      {E::RolloutStarted, "rollout_started"},
      {E::RolloutPaused, "rollout_paused"},
      {E::RolloutFailed, "rollout_failed"},
      {E::RolloutRolledBack, "rollout_rolled_back"},
      {E::RolloutSucceeded, "rollout_succeeded"},
  };
  for (const auto& [event, name] : names) {
    INFO(name);
    CHECK(to_string(event) == name);
    CHECK(from_string<NotificationEvent>(name) == event);
  }
  CHECK_FALSE(from_string<NotificationEvent>("rollout_cancelled").has_value());
  CHECK_FALSE(from_string<NotificationEvent>("Rollout_Started").has_value());

  SECTION("a target may subscribe to every rollout event") {
    NotificationTarget target =
        make_target("rollouts", NotificationFormat::Generic, kRolloutEvents);
    CHECK(validate(target).has_value());
    target.events.push_back(NotificationEvent::RolloutFailed);
    const auto twice = validate(target);
    REQUIRE_FALSE(twice.has_value());
    CHECK(twice.error().message == "events lists rollout_failed twice");
  }
}

TEST_CASE("each rollout event reaches only its subscribers in the notice's group",
          "[notification]") {
  using E = NotificationEvent;
  const std::vector<NotificationTarget> targets = {
      make_target("all-rollouts", NotificationFormat::Generic, kRolloutEvents),
      make_target("ops-wecom", NotificationFormat::WeCom,
                  {E::RolloutFailed, E::RolloutRolledBack, E::ScaleOutFailed}),
      make_target("paused-only", NotificationFormat::Generic, {E::RolloutPaused}),
      make_target("scaling", NotificationFormat::Generic,
                  {E::ScaleOutSuccessful, E::ScaleOutFailed, E::HookTimeout}),
      make_target("other-group", NotificationFormat::Generic, kRolloutEvents, "api"),
      make_target("done", NotificationFormat::WeCom, {E::RolloutSucceeded, E::RolloutStarted}),
  };
  struct Row {
    E event;
    std::vector<std::string> expected;
  };
  const std::vector<Row> table = {
      {E::RolloutStarted, {"all-rollouts", "done"}},
      {E::RolloutPaused, {"all-rollouts", "paused-only"}},
      {E::RolloutFailed, {"all-rollouts", "ops-wecom"}},
      {E::RolloutRolledBack, {"all-rollouts", "ops-wecom"}},
      {E::RolloutSucceeded, {"all-rollouts", "done"}},
  };
  for (const auto& row : table) {
    INFO(to_string(row.event));
    const auto messages = notifications_for(make_notice(row.event), targets, {"0.1.0"});
    std::vector<std::string> names;
    for (const auto& message : messages) {
      names.push_back(message.target);
      CHECK(message.url == "http://127.0.0.1:9/" + message.target);
      CHECK(message.content_type == "application/json");
      const json body = json::parse(message.body);
      if (message.target == "ops-wecom" || message.target == "done") {
        CHECK(body.at("msgtype") == "markdown");
        const std::string content = body.at("markdown").at("content");
        CHECK(content.find(std::string(to_string(row.event))) != std::string::npos);
      } else {
        CHECK(body.at("event") == to_string(row.event));
        CHECK(body.at("tide_version") == "0.1.0");
      }
    }
    CHECK(names == row.expected);
  }

  SECTION("a notice of another group reaches that group's targets only") {
    RolloutNotice notice = make_notice(E::RolloutFailed);
    notice.group = "api";
    const auto messages = notifications_for(notice, targets, {});
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].target == "other-group");
    notice.group = "batch";
    CHECK(notifications_for(notice, targets, {}).empty());
  }
  SECTION("nobody subscribed: no message") {
    const std::vector<NotificationTarget> scaling_only = {targets[3]};
    for (const E event : kRolloutEvents) {
      CHECK(notifications_for(make_notice(event), scaling_only, {}).empty());
    }
  }
}

TEST_CASE("generic body for a rollout notice carries every field", "[notification]") {
  const RolloutNotice notice = make_notice(NotificationEvent::RolloutFailed);
  const json body = json::parse(generic_body(notice, {"0.1.0"}));
  CHECK(body.size() == 11);
  CHECK(body.at("event") == "rollout_failed");
  CHECK(body.at("group") == "web");
  CHECK(body.at("rollout_id") == "r-0123456789abcdef");
  CHECK(body.at("from") == "app:1");
  CHECK(body.at("to") == "app:2");
  CHECK(body.at("batch") == 2);
  CHECK(body.at("replaced") == 3);
  CHECK(body.at("old_at_start") == 10);
  CHECK(body.at("message") == "batch 2 was not done within 600 s");
  CHECK(body.at("time") == "2024-05-01T03:00:00.250Z");
  CHECK(body.at("tide_version") == "0.1.0");

  SECTION("no version field unless one is given; numbers stay numbers at zero") {
    RolloutNotice started = make_notice(NotificationEvent::RolloutStarted);
    started.batch = 0;
    started.replaced = 0;
    started.old_at_start = 0;
    started.message.clear();
    const json plain = json::parse(generic_body(started));
    CHECK(plain.size() == 10);
    CHECK_FALSE(plain.contains("tide_version"));
    CHECK(plain.at("event") == "rollout_started");
    CHECK(plain.at("batch") == 0);
    CHECK(plain.at("old_at_start").is_number_unsigned());
    CHECK(plain.at("message") == "");
  }
  SECTION("the generic body is never truncated, and bad UTF-8 becomes U+FFFD") {
    RolloutNotice long_notice = notice;
    long_notice.message = std::string(10'000, 'x') + "\xFF";
    const json parsed = json::parse(generic_body(long_notice));
    CHECK(parsed.at("message") == std::string(10'000, 'x') + "\xEF\xBF\xBD");
  }
}

TEST_CASE("WeCom body for a rollout notice", "[notification]") {
  const RolloutNotice notice = make_notice(NotificationEvent::RolloutFailed);
  const json body = json::parse(wecom_body(notice, {}));
  CHECK(body.size() == 2);
  CHECK(body.at("msgtype") == "markdown");
  const std::string content = body.at("markdown").at("content");
  CHECK(content ==
        "### tide: rollout failed in group `web`\n"
        "> event: <font color=\"warning\">rollout_failed</font>\n"
        "> rollout: `r-0123456789abcdef`\n"
        "> version: `app:1` \xE2\x86\x92 `app:2`\n"
        "> progress: batch 2, 3 of 10 replaced\n"
        "> cause: batch 2 was not done within 600 s\n"
        "> time: 2024-05-01T03:00:00.250Z");

  SECTION("each event has its title and colour") {
    using E = NotificationEvent;
    const std::vector<std::pair<E, std::string>> rows = {
        {E::RolloutStarted,
         "### tide: rollout started in group `web`\n> event: <font color=\"info\">"},
        {E::RolloutPaused,
         "### tide: rollout paused in group `web`\n> event: <font color=\"warning\">"},
        {E::RolloutFailed,
         "### tide: rollout failed in group `web`\n> event: <font color=\"warning\">"},
        {E::RolloutRolledBack,
         "### tide: rollout rolled back in group `web`\n> event: <font color=\"warning\">"},
        {E::RolloutSucceeded,
         "### tide: rollout succeeded in group `web`\n> event: <font color=\"info\">"},
    };
    for (const auto& [event, head] : rows) {
      INFO(to_string(event));
      CHECK(wecom_markdown(make_notice(event)).rfind(head, 0) == 0);
    }
  }
  SECTION("before the first batch there is no progress line, and no cause without a message") {
    RolloutNotice started = make_notice(NotificationEvent::RolloutStarted);
    started.batch = 0;
    started.replaced = 0;
    started.old_at_start = 0;
    started.message.clear();
    const std::string text = wecom_markdown(started);
    CHECK(text.find("progress:") == std::string::npos);
    CHECK(text.find("cause:") == std::string::npos);
    CHECK(text.find("> time: 2024-05-01T03:00:00.250Z") != std::string::npos);
  }
  SECTION("a newline in the message does not break the quote block") {
    RolloutNotice multi = notice;
    multi.message = "canary failed:\nerror share 4.1 %";
    CHECK(wecom_markdown(multi).find("> cause: canary failed: error share 4.1 %\n") !=
          std::string::npos);
  }
}

TEST_CASE("WeCom content for a rollout stays within the limit with a long multi-byte message",
          "[notification]") {
  RolloutNotice notice = make_notice(NotificationEvent::RolloutRolledBack);
  // 3,000 Chinese characters (9,000 bytes) after two ASCII bytes: the cap
  // of 1,024 bytes (less the ellipsis) then falls inside a character.
  notice.message = "xy";
  for (int i = 0; i < 3000; ++i) notice.message += "回滚";
  notice.group = std::string(200, 'g');
  notice.rollout_id = "r-" + std::string(300, 'f');
  const std::string content = wecom_markdown(notice);
  CHECK(content.size() <= kWeComMaxContentBytes);
  CHECK(valid_utf8(content));
  // The message is cut to its cap and marked; the lines after it are kept.
  const auto cause = content.find("> cause: xy回滚");
  REQUIRE(cause != std::string::npos);
  const auto cause_end = content.find('\n', cause);
  REQUIRE(cause_end != std::string::npos);
  const std::string cause_text = content.substr(cause + 9, cause_end - cause - 9);
  CHECK(cause_text.size() <= 1024);
  CHECK(cause_text.size() > 1024 - 6);
  CHECK(cause_text.ends_with("\xE2\x80\xA6"));
  CHECK(content.ends_with("> time: 2024-05-01T03:00:00.250Z"));

  SECTION("the whole body parses and its content is the same text") {
    const json body = json::parse(wecom_body(notice, {}));
    CHECK(body.at("markdown").at("content") == content);
  }
  SECTION("a smaller limit is honoured too, even one that cuts inside the message") {
    for (std::size_t limit : {1000U, 700U, 301U, 200U, 50U, 7U, 0U}) {
      INFO(limit);
      const std::string small = wecom_markdown(notice, limit);
      CHECK(small.size() <= limit);
      CHECK(small.size() + 3 > limit);  // a cut gives up at most a partial character
      CHECK(valid_utf8(small));
      NotificationOptions options;
      options.wecom_max_content_bytes = limit;
      CHECK(json::parse(wecom_body(notice, options)).at("markdown").at("content") == small);
    }
  }
}
