#include "coordinator/io/json/policy_json.hpp"

#include <chrono>

#include <date/date.h>

#include "coordinator/io/json/fields.hpp"

namespace tide::coordinator {

namespace {

constexpr std::int64_t kDayMs = 86'400'000;

json optional_json(const std::optional<std::int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json optional_json(const std::optional<std::uint32_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json limit_json(const ScalingRateLimit& limit) {
  return json{{"max_instances", limit.max_instances}, {"period_ms", limit.period_ms}};
}

tl::unexpected<JsonError> invalid(const ModelError& error) {
  return tl::unexpected<JsonError>(JsonError{error.field, error.message});
}

// The common head of every spec: the object check, `group` (must match the
// caller's when given) and the required `name`.
tl::expected<void, JsonError> read_head(const json& body, Fields& f, std::string_view group, std::string& name) {
  if (!body.is_object()) return tl::make_unexpected(JsonError{"", "must be a JSON object"});
  std::string body_group;
  TIDE_JSON_TRY(f.text("group", body_group, 128));
  if (!body_group.empty() && body_group != group) {
    return f.fail("group", "is '" + body_group + "' but the request is for group '" + std::string(group) + "'");
  }
  TIDE_JSON_TRY(f.text("name", name, 128));
  if (name.empty()) return f.fail("name", "required");
  return {};
}

template <class E>
tl::expected<void, JsonError> read_enum(Fields& f, const std::string& key, E& out, std::string_view choices) {
  if (!f.has(key)) return {};
  std::string text;
  TIDE_JSON_TRY(f.text(key, text, 64));
  const auto parsed = from_string<E>(text);
  if (!parsed) return f.fail(key, "must be one of " + std::string(choices));
  out = *parsed;
  return {};
}

tl::expected<void, JsonError> read_limit(Fields& f, const std::string& key, ScalingRateLimit& out) {
  if (!f.has(key)) return {};
  const json& value = f.at(key);
  if (!value.is_object()) return f.fail(key, "must be an object {max_instances, period_ms}");
  Fields lf(value, key + ".");
  TIDE_JSON_TRY(lf.integer<std::uint32_t>("max_instances", out.max_instances, 0, 10'000));
  TIDE_JSON_TRY(lf.duration<std::int64_t>("period", out.period_ms, 1'000, kDayMs));
  TIDE_JSON_TRY(lf.no_unknown_keys());
  return {};
}

// A time given either as epoch ms (`<stem>_ms`) or as RFC 3339 (`<stem>_time`).
tl::expected<void, JsonError> read_time(Fields& f, const std::string& stem, std::optional<TimeMs>& out) {
  const std::string ms_key = stem + "_ms";
  const std::string time_key = stem + "_time";
  const bool has_ms = f.has(ms_key);
  const bool has_time = f.has(time_key);
  if (has_ms && has_time) return f.fail(time_key, "give either " + ms_key + " or " + time_key + ", not both");
  if (has_ms) {
    TimeMs value = 0;
    TIDE_JSON_TRY(f.integer<std::int64_t>(ms_key, value, 0, INT64_MAX / 2));
    out = value;
  }
  if (has_time) {
    std::string text;
    TIDE_JSON_TRY(f.text(time_key, text, 64));
    auto parsed = parse_rfc3339(text);
    if (!parsed) return f.fail(time_key, parsed.error());
    out = *parsed;
  }
  return {};
}

}  // namespace

const std::string& policy_group(const ScalingPolicy& policy) {
  return std::visit([](const auto& p) -> const std::string& { return p.group; }, policy);
}

const std::string& policy_name(const ScalingPolicy& policy) {
  return std::visit([](const auto& p) -> const std::string& { return p.name; }, policy);
}

json to_json(const AlarmPolicy& p) {
  json j{{"group", p.group},
              {"name", p.name},
              {"type", "alarm"},
              {"enabled", p.enabled},
              {"metric", p.metric},
              {"statistic", to_string(p.statistic)},
              {"comparison", to_string(p.comparison)},
              {"threshold", p.threshold},
              {"period_ms", p.period_ms},
              {"evaluation_periods", p.evaluation_periods},
              {"adjustment_type", to_string(p.adjustment_type)},
              {"adjustment", p.adjustment},
              {"min_adjustment_magnitude", p.min_adjustment_magnitude},
              {"cooldown_ms", optional_json(p.cooldown_ms)}};
  if (!p.query.empty()) j["query"] = p.query;
  return j;
}

json to_json(const TargetTrackingPolicy& p) {
  json j{{"group", p.group},
              {"name", p.name},
              {"type", "target_tracking"},
              {"enabled", p.enabled},
              {"metric", p.metric},
              {"target", p.target},
              {"tolerance", p.tolerance},
              {"window_ms", p.window_ms},
              {"scale_out_window_ms", p.scale_out_window_ms},
              {"scale_in_stabilization_ms", p.scale_in_stabilization_ms},
              {"scale_out_limit", limit_json(p.scale_out_limit)},
              {"scale_in_limit", limit_json(p.scale_in_limit)},
              {"disable_scale_in", p.disable_scale_in}};
  if (!p.query.empty()) j["query"] = p.query;
  return j;
}

json to_json(const ScalingPolicy& policy) {
  return std::visit([](const auto& p) { return to_json(p); }, policy);
}

json to_json(const ScheduledAction& a) {
  return json{{"group", a.group},
              {"name", a.name},
              {"cron", a.cron},
              {"time_zone", a.time_zone},
              {"start_ms", optional_json(a.start_ms)},
              {"end_ms", optional_json(a.end_ms)},
              {"min", optional_json(a.min)},
              {"max", optional_json(a.max)},
              {"desired", optional_json(a.desired)}};
}

json to_json(const LifecycleHook& h) {
  return json{{"group", h.group},
              {"name", h.name},
              {"transition", to_string(h.transition)},
              {"heartbeat_timeout_ms", h.heartbeat_timeout_ms},
              {"default_result", to_string(h.default_result)},
              {"notification_metadata", h.notification_metadata},
              {"agent_script", h.agent_script}};
}

json to_json(const NotificationTarget& t) {
  json events = json::array();
  for (NotificationEvent event : t.events) events.push_back(to_string(event));
  return json{{"group", t.group},
              {"name", t.name},
              {"url", t.url},
              {"format", to_string(t.format)},
              {"events", events}};
}

tl::expected<ScalingPolicy, JsonError> policy_from_json(const json& body, std::string_view group) {
  Fields f(body);
  std::string name;
  TIDE_JSON_TRY(read_head(body, f, group, name));
  std::string type = "alarm";
  TIDE_JSON_TRY(f.text("type", type, 32));
  if (type == "alarm") {
    AlarmPolicy p;
    p.group = std::string(group);
    p.name = name;
    TIDE_JSON_TRY(f.boolean("enabled", p.enabled));
    TIDE_JSON_TRY(f.text("metric", p.metric, 128));
    if (p.metric.empty()) return f.fail("metric", "required");
    TIDE_JSON_TRY(f.text("query", p.query, kMaxQueryBytes));
    TIDE_JSON_TRY(read_enum(f, "statistic", p.statistic, "average, maximum, minimum"));
    if (!f.has("comparison")) return f.fail("comparison", "required");
    TIDE_JSON_TRY(read_enum(f, "comparison", p.comparison, ">, >=, <, <=, ==, !="));
    if (!f.has("threshold")) return f.fail("threshold", "required");
    TIDE_JSON_TRY(f.number("threshold", p.threshold, -1e15, 1e15));
    TIDE_JSON_TRY(f.duration<std::int64_t>("period", p.period_ms, 1'000, kDayMs));
    if (p.period_ms % 1'000 != 0) return f.fail(f.duration_key("period"), "must be a whole number of seconds");
    TIDE_JSON_TRY(f.integer<std::uint32_t>("evaluation_periods", p.evaluation_periods, 1, 1'000));
    TIDE_JSON_TRY(read_enum(f, "adjustment_type", p.adjustment_type, "change, exact, percent"));
    if (!f.has("adjustment")) return f.fail("adjustment", "required");
    TIDE_JSON_TRY(f.integer<std::int32_t>("adjustment", p.adjustment, -10'000, 10'000));
    TIDE_JSON_TRY(f.integer<std::uint32_t>("min_adjustment_magnitude", p.min_adjustment_magnitude, 0, 10'000));
    if (f.has("cooldown_ms") || f.has("cooldown")) {
      std::int64_t cooldown = 0;
      TIDE_JSON_TRY(f.duration<std::int64_t>("cooldown", cooldown, 0, kDayMs));
      p.cooldown_ms = cooldown;
    }
    TIDE_JSON_TRY(f.no_unknown_keys());
    if (auto ok = validate(p); !ok) return invalid(ok.error());
    return ScalingPolicy{p};
  }
  if (type == "target_tracking") {
    TargetTrackingPolicy p;
    p.group = std::string(group);
    p.name = name;
    TIDE_JSON_TRY(f.boolean("enabled", p.enabled));
    TIDE_JSON_TRY(f.text("metric", p.metric, 128));
    if (p.metric.empty()) return f.fail("metric", "required");
    TIDE_JSON_TRY(f.text("query", p.query, kMaxQueryBytes));
    if (!f.has("target")) return f.fail("target", "required");
    TIDE_JSON_TRY(f.number("target", p.target, 1e-9, 1e15));
    TIDE_JSON_TRY(f.number("tolerance", p.tolerance, 0.0, 0.99));
    TIDE_JSON_TRY(f.duration<std::int64_t>("window", p.window_ms, 1'000, kDayMs));
    TIDE_JSON_TRY(f.duration<std::int64_t>("scale_out_window", p.scale_out_window_ms, 0, kDayMs));
    TIDE_JSON_TRY(f.duration<std::int64_t>("scale_in_stabilization", p.scale_in_stabilization_ms, 0, kDayMs));
    TIDE_JSON_TRY(read_limit(f, "scale_out_limit", p.scale_out_limit));
    TIDE_JSON_TRY(read_limit(f, "scale_in_limit", p.scale_in_limit));
    TIDE_JSON_TRY(f.boolean("disable_scale_in", p.disable_scale_in));
    TIDE_JSON_TRY(f.no_unknown_keys());
    if (auto ok = validate(p); !ok) return invalid(ok.error());
    return ScalingPolicy{p};
  }
  return f.fail("type", "must be alarm or target_tracking");
}

tl::expected<ScheduledAction, JsonError> scheduled_action_from_json(const json& body, std::string_view group) {
  Fields f(body);
  ScheduledAction a;
  TIDE_JSON_TRY(read_head(body, f, group, a.name));
  a.group = std::string(group);
  TIDE_JSON_TRY(f.text("cron", a.cron, 256));
  TIDE_JSON_TRY(f.text("time_zone", a.time_zone, 128));
  TIDE_JSON_TRY(read_time(f, "start", a.start_ms));
  TIDE_JSON_TRY(read_time(f, "end", a.end_ms));
  for (auto [key, out] : {std::pair{"min", &a.min}, std::pair{"max", &a.max}, std::pair{"desired", &a.desired}}) {
    if (!f.has(key)) continue;
    std::uint32_t value = 0;
    TIDE_JSON_TRY(f.integer<std::uint32_t>(key, value, 0, 10'000));
    *out = value;
  }
  TIDE_JSON_TRY(f.no_unknown_keys());
  if (auto ok = validate(a); !ok) return invalid(ok.error());
  return a;
}

tl::expected<LifecycleHook, JsonError> lifecycle_hook_from_json(const json& body, std::string_view group) {
  Fields f(body);
  LifecycleHook h;
  TIDE_JSON_TRY(read_head(body, f, group, h.name));
  h.group = std::string(group);
  if (!f.has("transition")) return f.fail("transition", "required");
  TIDE_JSON_TRY(read_enum(f, "transition", h.transition, "launching, terminating"));
  TIDE_JSON_TRY(f.duration<std::int64_t>("heartbeat_timeout", h.heartbeat_timeout_ms, 30'000, 7'200'000));
  TIDE_JSON_TRY(read_enum(f, "default_result", h.default_result, "continue, abandon"));
  TIDE_JSON_TRY(f.text("notification_metadata", h.notification_metadata, 1'024));
  TIDE_JSON_TRY(f.text("agent_script", h.agent_script, 128));
  TIDE_JSON_TRY(f.no_unknown_keys());
  if (auto ok = validate(h); !ok) return invalid(ok.error());
  return h;
}

tl::expected<NotificationTarget, JsonError> notification_target_from_json(const json& body,
                                                                          std::string_view group) {
  Fields f(body);
  NotificationTarget t;
  TIDE_JSON_TRY(read_head(body, f, group, t.name));
  t.group = std::string(group);
  TIDE_JSON_TRY(f.text("url", t.url, 2'048));
  if (t.url.empty()) return f.fail("url", "required");
  TIDE_JSON_TRY(read_enum(f, "format", t.format, "generic, wecom"));
  if (!f.has("events")) return f.fail("events", "required");
  const json& events = f.at("events");
  if (!events.is_array()) return f.fail("events", "must be a list of event names");
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto parsed = events[i].is_string() ? from_string<NotificationEvent>(events[i].get<std::string>())
                                              : std::nullopt;
    if (!parsed) {
      return f.fail("events[" + std::to_string(i) + "]", "must be one of " + notification_event_names());
    }
    t.events.push_back(*parsed);
  }
  TIDE_JSON_TRY(f.no_unknown_keys());
  if (auto ok = validate(t); !ok) return invalid(ok.error());
  return t;
}

std::string format_rfc3339(TimeMs time_ms) {
  const date::sys_seconds seconds{std::chrono::seconds{time_ms / 1000}};
  return date::format("%FT%TZ", seconds);
}

tl::expected<TimeMs, std::string> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), read by hand: date's
  // stream parser trips GCC 12's -Wmaybe-uninitialized under -O2.
  const auto bad = [] {
    return tl::make_unexpected(std::string("must be an RFC 3339 time such as 2026-11-27T11:00:00+08:00 or 2026-11-27T03:00Z"));
  };
  std::size_t pos = 0;
  const auto number = [&](std::size_t digits, int& out) {
    if (pos + digits > text.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      const char c = text[pos + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    pos += digits;
    return true;
  };
  const auto literal = [&](char expected) {
    if (pos >= text.size() || (text[pos] != expected && !(expected == 'T' && text[pos] == 't'))) return false;
    ++pos;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  // RFC 3339 with two allowances the CLI makes too: a space for the 'T'
  // (RFC 3339 §5.6 permits it) and the seconds left out ("11:00Z").
  const auto separator = [&] {
    if (pos < text.size() && text[pos] == ' ') {
      ++pos;
      return true;
    }
    return literal('T');
  };
  if (!number(4, year) || !literal('-') || !number(2, month) || !literal('-') || !number(2, day) || !separator() ||
      !number(2, hour) || !literal(':') || !number(2, minute)) {
    return bad();
  }
  if (pos < text.size() && text[pos] == ':' && (++pos, !number(2, second))) return bad();
  std::int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::int64_t scale = 100;
    const std::size_t first = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return bad();
  }
  std::int64_t offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!number(2, oh) || !literal(':') || !number(2, om) || oh > 23 || om > 59) return bad();
    offset_min = sign * (oh * 60 + om);
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                 date::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return bad();
  const std::int64_t days = date::sys_days{ymd}.time_since_epoch().count();
  const std::int64_t seconds = days * 86'400 + hour * 3'600 + minute * 60 + second - offset_min * 60;
  return seconds * 1'000 + millis;
}

}  // namespace tide::coordinator
