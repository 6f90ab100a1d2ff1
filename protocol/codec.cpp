// The tide wire codec (protocol/SPEC.md is normative).
//
// encode() writes msgpack straight into the output vector with a packer; no
// msgpack::object is built. decode() unpacks untrusted bytes with tight
// msgpack::unpack_limit values (so a lying length header cannot make it
// allocate), converts the object tree by hand (type checks name the field),
// then runs the same validate() that senders use, so the bounds live in one
// place. No exception leaves this file.
#include "protocol/codec.hpp"

#include <msgpack.hpp>

#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace tide::protocol {
namespace {

// ---- unpack limits (SPEC.md, "Limits") ------------------------------------
// The largest container on the wire is a 64-entry map (labels, custom
// metrics); the longest string is HOOK_RESULT.output (4096 bytes). The
// deepest path is envelope > body > probes > probe (depth 4). Anything larger
// is refused by the unpacker before it allocates.
constexpr std::size_t kUnpackArray = 256;
constexpr std::size_t kUnpackMap = 256;
constexpr std::size_t kUnpackStr = 4096;
constexpr std::size_t kUnpackBin = 0;
constexpr std::size_t kUnpackExt = 0;
constexpr std::size_t kUnpackDepth = 8;

// ---- encoding -------------------------------------------------------------

struct VectorSink {
  std::vector<std::uint8_t>* out;
  void write(const char* data, std::size_t size) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
    out->insert(out->end(), bytes, bytes + size);
  }
};

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : m_sink{&out}, m_packer(m_sink) {}

  void map(std::size_t entries) { m_packer.pack_map(static_cast<std::uint32_t>(entries)); }
  void array(std::size_t entries) { m_packer.pack_array(static_cast<std::uint32_t>(entries)); }
  void str(std::string_view s) {
    const auto size = static_cast<std::uint32_t>(s.size());
    m_packer.pack_str(size);
    m_packer.pack_str_body(s.data(), size);
  }
  void u64(std::uint64_t v) { m_packer.pack_uint64(v); }
  void i64(std::int64_t v) { m_packer.pack_int64(v); }
  void boolean(bool v) {
    if (v) {
      m_packer.pack_true();
    } else {
      m_packer.pack_false();
    }
  }
  // Always float64 (0xcb), so a value's encoding does not depend on whether
  // it happens to be integral; msgpack-cxx's pack_double would shorten it.
  void f64(double v) {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    std::array<char, 9> buf{};
    buf[0] = static_cast<char>(0xcb);
    for (std::size_t i = 0; i < 8; ++i) {
      buf[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xffU);
    }
    m_sink.write(buf.data(), buf.size());
  }

  void field(std::string_view key, std::string_view v) { str(key); str(v); }
  void field(std::string_view key, const std::string& v) { str(key); str(v); }
  void field(std::string_view key, const char* v) = delete;
  void field(std::string_view key, bool v) { str(key); boolean(v); }
  void field(std::string_view key, std::uint64_t v) { str(key); u64(v); }
  void field(std::string_view key, std::uint32_t v) { str(key); u64(v); }
  void field(std::string_view key, std::uint16_t v) { str(key); u64(v); }
  void field(std::string_view key, std::int32_t v) { str(key); i64(v); }
  void field(std::string_view key, double v) { str(key); f64(v); }

 private:
  VectorSink m_sink;
  msgpack::packer<VectorSink> m_packer;
};

void write_body(Writer& w, const Hello& m) {
  w.map(8);
  w.field("instance_id", m.instance_id);
  w.field("enrollment_token", m.enrollment_token);
  w.field("agent_version", m.agent_version);
  w.field("hostname", m.hostname);
  w.field("service_address", m.service_address);
  w.field("service_port", m.service_port);
  w.str("labels");
  w.map(m.labels.size());
  for (const auto& [key, value] : m.labels) {
    w.str(key);
    w.str(value);
  }
  w.str("capabilities");
  w.array(m.capabilities.size());
  for (const auto& capability : m.capabilities) w.str(capability);
}

void write_body(Writer& w, const Welcome& m) {
  w.map(4);
  w.field("session_id", m.session_id);
  w.field("report_interval_ms", m.report_interval_ms);
  w.field("heartbeat_interval_ms", m.heartbeat_interval_ms);
  w.field("liveness", m.liveness);
}

void write_probe(Writer& w, const ProbeResult& p) {
  w.map(5);
  w.field("name", p.name);
  w.field("kind", to_string(p.kind));
  w.field("passing", p.passing);
  w.field("message", p.message);
  w.field("latency_ms", p.latency_ms);
}

void write_metrics(Writer& w, const Metrics& m) {
  const std::size_t entries = std::size_t{1} + (m.cpu_pct ? 1U : 0U) + (m.memory_pct ? 1U : 0U) +
                              (m.load1 ? 1U : 0U) + (m.net_in_bps ? 1U : 0U) +
                              (m.net_out_bps ? 1U : 0U) + (m.tcp_established ? 1U : 0U);
  w.map(entries);
  if (m.cpu_pct) w.field("cpu_pct", *m.cpu_pct);
  if (m.memory_pct) w.field("memory_pct", *m.memory_pct);
  if (m.load1) w.field("load1", *m.load1);
  if (m.net_in_bps) w.field("net_in_bps", *m.net_in_bps);
  if (m.net_out_bps) w.field("net_out_bps", *m.net_out_bps);
  if (m.tcp_established) w.field("tcp_established", *m.tcp_established);
  w.str("custom");
  w.map(m.custom.size());
  for (const auto& [name, value] : m.custom) {
    w.str(name);
    w.f64(value);
  }
}

void write_body(Writer& w, const Report& m) {
  w.map(9);
  w.field("seq", m.seq);
  w.field("timestamp_ms", m.timestamp_ms);
  w.field("ready", m.ready);
  w.field("ready_reason", m.ready_reason);
  w.field("healthy", m.healthy);
  w.field("health_reason", m.health_reason);
  w.field("draining", m.draining);
  w.str("probes");
  w.array(m.probes.size());
  for (const auto& probe : m.probes) write_probe(w, probe);
  w.str("metrics");
  write_metrics(w, m.metrics);
}

void write_body(Writer& w, const Heartbeat& /*m*/) { w.map(0); }

void write_body(Writer& w, const Drain& m) {
  w.map(2);
  w.field("command_id", m.command_id);
  w.field("timeout_ms", m.timeout_ms);
}

void write_body(Writer& w, const Undrain& m) {
  w.map(1);
  w.field("command_id", m.command_id);
}

void write_body(Writer& w, const HookRun& m) {
  w.map(4);
  w.field("command_id", m.command_id);
  w.field("hook_name", m.hook_name);
  w.field("transition", m.transition);
  w.field("timeout_ms", m.timeout_ms);
}

void write_body(Writer& w, const HookResult& m) {
  w.map(5);
  w.field("command_id", m.command_id);
  w.field("hook_name", m.hook_name);
  w.field("exit_status", m.exit_status);
  w.field("timed_out", m.timed_out);
  w.field("output", m.output);
}

void write_body(Writer& w, const Shutdown& m) {
  w.map(2);
  w.field("command_id", m.command_id);
  w.field("grace_ms", m.grace_ms);
}

void write_body(Writer& w, const Ack& m) {
  w.map(1);
  w.field("command_id", m.command_id);
}

void write_body(Writer& w, const Error& m) {
  w.map(3);
  w.field("code", static_cast<std::uint64_t>(m.code));
  w.field("message", m.message);
  w.field("command_id", m.command_id);
}

void write_body(Writer& w, const Goodbye& m) {
  w.map(1);
  w.field("reason", m.reason);
}

// ---- validation -------------------------------------------------------------

DecodeError out_of_bounds(std::string detail) {
  return DecodeError{DecodeError::Kind::OutOfBounds, std::move(detail), 0};
}

// Strict UTF-8 (no overlong forms, no surrogates, <= U+10FFFF): text fields
// end up in JSON, logs and HAProxy commands, where invalid UTF-8 breaks things.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xe0U) == 0xc0U) {
      len = 2;
      cp = c & 0x1fU;
      min = 0x80;
    } else if ((c & 0xf0U) == 0xe0U) {
      len = 3;
      cp = c & 0x0fU;
      min = 0x800;
    } else if ((c & 0xf8U) == 0xf0U) {
      len = 4;
      cp = c & 0x07U;
      min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0U) != 0x80U) return false;
      cp = (cp << 6U) | (cc & 0x3fU);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

class Validator {
 public:
  explicit Validator(std::string_view command) : m_command(command) {}

  void text(std::string_view field, const std::string& v, std::size_t min, std::size_t max) {
    if (m_error) return;
    if (v.size() < min || v.size() > max) {
      fail(field, "length " + std::to_string(v.size()) + " outside " + std::to_string(min) + ".." +
                      std::to_string(max) + " bytes");
    } else if (!is_utf8(v)) {
      fail(field, "is not valid UTF-8");
    }
  }
  void id(std::string_view field, const std::string& v) {
    if (m_error) return;
    if (!is_valid_id(v)) {
      fail(field, "must be 1.." + std::to_string(kMaxIdLength) + " bytes of [A-Za-z0-9._:-]");
    }
  }
  template <typename T>
  void range(std::string_view field, T v, T min, T max) {
    if (m_error) return;
    if (v < min || v > max) {
      fail(field, "value " + std::to_string(v) + " outside " + std::to_string(min) + ".." +
                      std::to_string(max));
    }
  }
  void command_id(std::uint64_t v) {
    if (m_error) return;
    if (v == 0) fail("command_id", "must be >= 1");
  }
  void count(std::string_view field, std::size_t n, std::size_t max) {
    if (m_error) return;
    if (n > max) {
      fail(field, "has " + std::to_string(n) + " entries, at most " + std::to_string(max));
    }
  }
  void number(std::string_view field, const std::optional<double>& v, double min, double max) {
    if (m_error || !v) return;
    if (!std::isfinite(*v) || *v < min || *v > max) {
      fail(field, "value " + std::to_string(*v) + " is not finite or outside its bounds");
    }
  }
  void fail(std::string_view field, const std::string& what) {
    if (!m_error) {
      m_error = out_of_bounds(std::string(m_command) + "." + std::string(field) + ": " + what);
    }
  }
  [[nodiscard]] tl::expected<void, DecodeError> result() {
    if (m_error) return tl::make_unexpected(std::move(*m_error));
    return {};
  }

 private:
  std::string_view m_command;
  std::optional<DecodeError> m_error;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

void check(Validator& v, const Hello& m) {
  v.id("instance_id", m.instance_id);
  v.text("enrollment_token", m.enrollment_token, 0, kMaxTokenLength);
  v.text("agent_version", m.agent_version, 1, kMaxVersionLength);
  v.text("hostname", m.hostname, 0, kMaxHostLength);
  v.text("service_address", m.service_address, 0, kMaxHostLength);
  v.count("labels", m.labels.size(), kMaxLabels);
  for (const auto& [key, value] : m.labels) {
    v.text("labels key", key, 1, kMaxIdLength);
    v.text("labels value", value, 0, kMaxTextLength);
  }
  v.count("capabilities", m.capabilities.size(), kMaxCapabilities);
  for (const auto& capability : m.capabilities) v.id("capabilities[]", capability);
}

void check(Validator& v, const Welcome& m) {
  v.id("session_id", m.session_id);
  v.range("report_interval_ms", m.report_interval_ms, kMinIntervalMs, kMaxIntervalMs);
  v.range("heartbeat_interval_ms", m.heartbeat_interval_ms, kMinIntervalMs, kMaxIntervalMs);
  v.range("liveness", m.liveness, kMinLiveness, kMaxLiveness);
}

void check(Validator& v, const Report& m) {
  if (m.seq == 0) v.fail("seq", "must be >= 1");
  v.text("ready_reason", m.ready_reason, 0, kMaxTextLength);
  v.text("health_reason", m.health_reason, 0, kMaxTextLength);
  v.count("probes", m.probes.size(), kMaxProbes);
  for (const auto& probe : m.probes) {
    v.text("probes[].name", probe.name, 1, kMaxIdLength);
    if (to_string(probe.kind) == "?") v.fail("probes[].kind", "unknown probe kind");
    v.text("probes[].message", probe.message, 0, kMaxTextLength);
    v.range("probes[].latency_ms", probe.latency_ms, std::uint32_t{0}, kMaxLatencyMs);
  }
  const Metrics& metrics = m.metrics;
  v.number("metrics.cpu_pct", metrics.cpu_pct, 0.0, 100.0);
  v.number("metrics.memory_pct", metrics.memory_pct, 0.0, 100.0);
  v.number("metrics.load1", metrics.load1, 0.0, kInf);
  v.number("metrics.net_in_bps", metrics.net_in_bps, 0.0, kInf);
  v.number("metrics.net_out_bps", metrics.net_out_bps, 0.0, kInf);
  v.count("metrics.custom", metrics.custom.size(), kMaxCustomMetrics);
  for (const auto& [name, value] : metrics.custom) {
    v.id("metrics.custom name", name);
    v.number("metrics.custom value", value, -kInf, kInf);
  }
}

void check(Validator& /*v*/, const Heartbeat& /*m*/) {}

void check(Validator& v, const Drain& m) {
  v.command_id(m.command_id);
  v.range("timeout_ms", m.timeout_ms, std::uint32_t{0}, kMaxDrainTimeoutMs);
}

void check(Validator& v, const Undrain& m) { v.command_id(m.command_id); }

void check(Validator& v, const HookRun& m) {
  v.command_id(m.command_id);
  v.id("hook_name", m.hook_name);
  if (m.transition != kTransitionLaunching && m.transition != kTransitionTerminating) {
    v.fail("transition", "must be \"launching\" or \"terminating\"");
  }
  v.range("timeout_ms", m.timeout_ms, std::uint32_t{1}, kMaxHookTimeoutMs);
}

void check(Validator& v, const HookResult& m) {
  v.command_id(m.command_id);
  v.id("hook_name", m.hook_name);
  v.text("output", m.output, 0, kMaxHookOutput);
}

void check(Validator& v, const Shutdown& m) {
  v.command_id(m.command_id);
  v.range("grace_ms", m.grace_ms, std::uint32_t{0}, kMaxGraceMs);
}

void check(Validator& v, const Ack& m) { v.command_id(m.command_id); }

void check(Validator& v, const Error& m) {
  if (!error_code_from_uint(static_cast<std::uint64_t>(m.code))) v.fail("code", "unknown error code");
  v.text("message", m.message, 0, kMaxTextLength);
}

void check(Validator& v, const Goodbye& m) { v.text("reason", m.reason, 0, kMaxTextLength); }

// ---- decoding ---------------------------------------------------------------

using Kind = DecodeError::Kind;

std::string_view type_name(msgpack::type::object_type type) {
  switch (type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: return "uint";
    case msgpack::type::NEGATIVE_INTEGER: return "negative int";
    case msgpack::type::FLOAT32: return "float32";
    case msgpack::type::FLOAT64: return "float64";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "?";
}

// Keeps the first error; every read after it is a no-op, so a body decoder is
// a straight list of reads followed by one check.
class Context {
 public:
  explicit Context(std::string_view command) : m_command(command) {}

  void fail(Kind kind, std::string_view field, std::string_view what) {
    if (m_error) return;
    std::string detail;
    detail.reserve(m_command.size() + field.size() + what.size() + 3);
    detail.append(m_command).append(".").append(field).append(": ").append(what);
    m_error = DecodeError{kind, std::move(detail), 0};
  }
  void wrong_type(std::string_view field, std::string_view expected, const msgpack::object& got) {
    if (m_error) return;
    fail(Kind::WrongType, field,
         "expected " + std::string(expected) + ", got " + std::string(type_name(got.type)));
  }
  [[nodiscard]] bool failed() const { return m_error.has_value(); }
  [[nodiscard]] DecodeError take_error() { return std::move(*m_error); }

 private:
  std::string_view m_command;
  std::optional<DecodeError> m_error;
};

enum class Need : std::uint8_t { Required, Optional };

// A map whose keys are all strings; find() looks a field up by name and
// refuses a name given twice (two values for one field is ambiguous).
class Fields {
 public:
  Fields(Context& ctx, std::string scope, const msgpack::object& obj)
      : m_ctx(ctx), m_scope(std::move(scope)) {
    if (obj.type != msgpack::type::MAP) {
      m_ctx.wrong_type(m_scope.empty() ? "body" : m_scope, "map", obj);
      return;
    }
    m_map = obj.via.map;
    for (std::uint32_t i = 0; i < m_map.size; ++i) {
      if (m_map.ptr[i].key.type != msgpack::type::STR) {
        m_ctx.wrong_type(path("<key>"), "str", m_map.ptr[i].key);
        return;
      }
    }
  }

  [[nodiscard]] const msgpack::object* find(std::string_view name, Need need) {
    if (m_ctx.failed()) return nullptr;
    const msgpack::object* found = nullptr;
    for (std::uint32_t i = 0; i < m_map.size; ++i) {
      const auto& key = m_map.ptr[i].key.via.str;
      if (key.size == name.size() && std::memcmp(key.ptr, name.data(), name.size()) == 0) {
        if (found != nullptr) {
          m_ctx.fail(Kind::OutOfBounds, path(name), "key given more than once");
          return nullptr;
        }
        found = &m_map.ptr[i].val;
      }
    }
    if (found == nullptr && need == Need::Required) {
      m_ctx.fail(Kind::WrongType, path(name), "required field is missing");
    }
    return found;
  }

  [[nodiscard]] std::string path(std::string_view name) const {
    if (m_scope.empty()) return std::string(name);
    return m_scope + "." + std::string(name);
  }
  [[nodiscard]] Context& ctx() { return m_ctx; }

 private:
  Context& m_ctx;
  std::string m_scope;
  msgpack::object_map m_map{0, nullptr};
};

std::string_view as_view(const msgpack::object& o) { return {o.via.str.ptr, o.via.str.size}; }

void read(Fields& f, std::string_view name, Need need, std::string& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::STR) return f.ctx().wrong_type(f.path(name), "str", *o);
  out.assign(as_view(*o));
}

void read(Fields& f, std::string_view name, Need need, bool& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::BOOLEAN) return f.ctx().wrong_type(f.path(name), "bool", *o);
  out = o->via.boolean;
}

// Unsigned fields take a msgpack uint that fits the field's C++ type.
template <typename T>
  requires std::is_unsigned_v<T>
void read(Fields& f, std::string_view name, Need need, T& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type == msgpack::type::NEGATIVE_INTEGER) {
    return f.ctx().fail(Kind::OutOfBounds, f.path(name), "must not be negative");
  }
  if (o->type != msgpack::type::POSITIVE_INTEGER) return f.ctx().wrong_type(f.path(name), "uint", *o);
  if (o->via.u64 > std::numeric_limits<T>::max()) {
    return f.ctx().fail(Kind::OutOfBounds, f.path(name),
                        "value " + std::to_string(o->via.u64) + " too large");
  }
  out = static_cast<T>(o->via.u64);
}

void read(Fields& f, std::string_view name, Need need, std::int32_t& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  constexpr auto kMin = std::numeric_limits<std::int32_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int32_t>::max();
  if (o->type == msgpack::type::POSITIVE_INTEGER) {
    if (o->via.u64 > static_cast<std::uint64_t>(kMax)) {
      return f.ctx().fail(Kind::OutOfBounds, f.path(name), "value does not fit int32");
    }
    out = static_cast<std::int32_t>(o->via.u64);
  } else if (o->type == msgpack::type::NEGATIVE_INTEGER) {
    if (o->via.i64 < kMin) {
      return f.ctx().fail(Kind::OutOfBounds, f.path(name), "value does not fit int32");
    }
    out = static_cast<std::int32_t>(o->via.i64);
  } else {
    f.ctx().wrong_type(f.path(name), "int", *o);
  }
}

// Numbers take float64, float32 or any integer: other encoders (and
// msgpack-cxx's own pack_double) shorten integral doubles to ints.
bool to_double(const msgpack::object& o, double& out) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      out = o.via.f64;
      return true;
    case msgpack::type::POSITIVE_INTEGER:
      out = static_cast<double>(o.via.u64);
      return true;
    case msgpack::type::NEGATIVE_INTEGER:
      out = static_cast<double>(o.via.i64);
      return true;
    case msgpack::type::NIL:
    case msgpack::type::BOOLEAN:
    case msgpack::type::STR:
    case msgpack::type::BIN:
    case msgpack::type::ARRAY:
    case msgpack::type::MAP:
    case msgpack::type::EXT:
      return false;
  }
  return false;
}

// Optional metrics: absent or nil both mean "not measured".
void read(Fields& f, std::string_view name, std::optional<double>& out) {
  const auto* o = f.find(name, Need::Optional);
  if (o == nullptr || o->type == msgpack::type::NIL) return;
  double value = 0.0;
  if (!to_double(*o, value)) return f.ctx().wrong_type(f.path(name), "number", *o);
  out = value;
}

void read(Fields& f, std::string_view name, std::optional<std::uint32_t>& out) {
  const auto* o = f.find(name, Need::Optional);
  if (o == nullptr || o->type == msgpack::type::NIL) return;
  std::uint32_t value = 0;
  read(f, name, Need::Required, value);
  if (!f.ctx().failed()) out = value;
}

void read(Fields& f, std::string_view name, Need need, std::map<std::string, std::string>& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::MAP) return f.ctx().wrong_type(f.path(name), "map", *o);
  for (std::uint32_t i = 0; i < o->via.map.size; ++i) {
    const auto& kv = o->via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return f.ctx().wrong_type(f.path(name) + " key", "str", kv.key);
    if (kv.val.type != msgpack::type::STR) return f.ctx().wrong_type(f.path(name) + " value", "str", kv.val);
    if (!out.emplace(as_view(kv.key), as_view(kv.val)).second) {
      return f.ctx().fail(Kind::OutOfBounds, f.path(name), "key given more than once");
    }
  }
}

void read(Fields& f, std::string_view name, Need need, std::map<std::string, double>& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::MAP) return f.ctx().wrong_type(f.path(name), "map", *o);
  for (std::uint32_t i = 0; i < o->via.map.size; ++i) {
    const auto& kv = o->via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return f.ctx().wrong_type(f.path(name) + " key", "str", kv.key);
    double value = 0.0;
    if (!to_double(kv.val, value)) return f.ctx().wrong_type(f.path(name) + " value", "number", kv.val);
    if (!out.emplace(as_view(kv.key), value).second) {
      return f.ctx().fail(Kind::OutOfBounds, f.path(name), "key given more than once");
    }
  }
}

void read(Fields& f, std::string_view name, Need need, std::vector<std::string>& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::ARRAY) return f.ctx().wrong_type(f.path(name), "array", *o);
  out.reserve(o->via.array.size);
  for (std::uint32_t i = 0; i < o->via.array.size; ++i) {
    const auto& item = o->via.array.ptr[i];
    if (item.type != msgpack::type::STR) {
      return f.ctx().wrong_type(f.path(name) + "[" + std::to_string(i) + "]", "str", item);
    }
    out.emplace_back(as_view(item));
  }
}

void read(Fields& f, std::string_view name, Need need, ProbeKind& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::STR) return f.ctx().wrong_type(f.path(name), "str", *o);
  const auto kind = probe_kind_from_string(as_view(*o));
  if (!kind) {
    return f.ctx().fail(Kind::OutOfBounds, f.path(name), "unknown probe kind (http, tcp, exec, notify)");
  }
  out = *kind;
}

void read(Fields& f, std::string_view name, Need need, ErrorCode& out) {
  std::uint64_t raw = 0;
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  read(f, name, need, raw);
  if (f.ctx().failed()) return;
  const auto code = error_code_from_uint(raw);
  if (!code) {
    return f.ctx().fail(Kind::OutOfBounds, f.path(name), "unknown error code " + std::to_string(raw));
  }
  out = *code;
}

void read(Fields& f, std::string_view name, Need need, std::vector<ProbeResult>& out) {
  const auto* o = f.find(name, need);
  if (o == nullptr) return;
  if (o->type != msgpack::type::ARRAY) return f.ctx().wrong_type(f.path(name), "array", *o);
  out.reserve(o->via.array.size);
  for (std::uint32_t i = 0; i < o->via.array.size && !f.ctx().failed(); ++i) {
    Fields p(f.ctx(), f.path(name) + "[" + std::to_string(i) + "]", o->via.array.ptr[i]);
    ProbeResult probe;
    read(p, "name", Need::Required, probe.name);
    read(p, "kind", Need::Required, probe.kind);
    read(p, "passing", Need::Required, probe.passing);
    read(p, "message", Need::Optional, probe.message);
    read(p, "latency_ms", Need::Optional, probe.latency_ms);
    out.push_back(std::move(probe));
  }
}

void read(Fields& f, std::string_view name, Metrics& out) {
  const auto* o = f.find(name, Need::Optional);
  if (o == nullptr) return;
  Fields m(f.ctx(), f.path(name), *o);
  read(m, "cpu_pct", out.cpu_pct);
  read(m, "memory_pct", out.memory_pct);
  read(m, "load1", out.load1);
  read(m, "net_in_bps", out.net_in_bps);
  read(m, "net_out_bps", out.net_out_bps);
  read(m, "tcp_established", out.tcp_established);
  read(m, "custom", Need::Optional, out.custom);
}

void read_body(Fields& f, Hello& m) {
  read(f, "instance_id", Need::Required, m.instance_id);
  read(f, "enrollment_token", Need::Optional, m.enrollment_token);
  read(f, "agent_version", Need::Required, m.agent_version);
  read(f, "hostname", Need::Optional, m.hostname);
  read(f, "service_address", Need::Optional, m.service_address);
  read(f, "service_port", Need::Optional, m.service_port);
  read(f, "labels", Need::Optional, m.labels);
  read(f, "capabilities", Need::Optional, m.capabilities);
}

void read_body(Fields& f, Welcome& m) {
  read(f, "session_id", Need::Required, m.session_id);
  read(f, "report_interval_ms", Need::Optional, m.report_interval_ms);
  read(f, "heartbeat_interval_ms", Need::Optional, m.heartbeat_interval_ms);
  read(f, "liveness", Need::Optional, m.liveness);
}

void read_body(Fields& f, Report& m) {
  read(f, "seq", Need::Required, m.seq);
  read(f, "timestamp_ms", Need::Required, m.timestamp_ms);
  read(f, "ready", Need::Required, m.ready);
  read(f, "ready_reason", Need::Optional, m.ready_reason);
  read(f, "healthy", Need::Required, m.healthy);
  read(f, "health_reason", Need::Optional, m.health_reason);
  read(f, "draining", Need::Optional, m.draining);
  read(f, "probes", Need::Optional, m.probes);
  read(f, "metrics", m.metrics);
}

void read_body(Fields& /*f*/, Heartbeat& /*m*/) {}

void read_body(Fields& f, Drain& m) {
  read(f, "command_id", Need::Required, m.command_id);
  read(f, "timeout_ms", Need::Optional, m.timeout_ms);
}

void read_body(Fields& f, Undrain& m) { read(f, "command_id", Need::Required, m.command_id); }

void read_body(Fields& f, HookRun& m) {
  read(f, "command_id", Need::Required, m.command_id);
  read(f, "hook_name", Need::Required, m.hook_name);
  read(f, "transition", Need::Required, m.transition);
  read(f, "timeout_ms", Need::Required, m.timeout_ms);
}

void read_body(Fields& f, HookResult& m) {
  read(f, "command_id", Need::Required, m.command_id);
  read(f, "hook_name", Need::Required, m.hook_name);
  read(f, "exit_status", Need::Required, m.exit_status);
  read(f, "timed_out", Need::Optional, m.timed_out);
  read(f, "output", Need::Optional, m.output);
}

void read_body(Fields& f, Shutdown& m) {
  read(f, "command_id", Need::Required, m.command_id);
  read(f, "grace_ms", Need::Optional, m.grace_ms);
}

void read_body(Fields& f, Ack& m) { read(f, "command_id", Need::Required, m.command_id); }

void read_body(Fields& f, Error& m) {
  read(f, "code", Need::Required, m.code);
  read(f, "message", Need::Optional, m.message);
  read(f, "command_id", Need::Optional, m.command_id);
}

void read_body(Fields& f, Goodbye& m) { read(f, "reason", Need::Optional, m.reason); }

template <typename T>
tl::expected<Message, DecodeError> decode_body(std::string_view command, const msgpack::object& body) {
  Context ctx(command);
  Fields fields(ctx, "", body);
  T message;
  read_body(fields, message);
  if (ctx.failed()) return tl::make_unexpected(ctx.take_error());
  Validator v(command);
  check(v, message);
  if (auto ok = v.result(); !ok) return tl::make_unexpected(std::move(ok.error()));
  return Message{std::move(message)};
}

using BodyDecoder = tl::expected<Message, DecodeError> (*)(std::string_view, const msgpack::object&);

struct CommandEntry {
  std::string_view name;
  BodyDecoder decode;
};

constexpr std::array<CommandEntry, 12> kCommands{{
    {"HELLO", &decode_body<Hello>},
    {"WELCOME", &decode_body<Welcome>},
    {"REPORT", &decode_body<Report>},
    {"HEARTBEAT", &decode_body<Heartbeat>},
    {"DRAIN", &decode_body<Drain>},
    {"UNDRAIN", &decode_body<Undrain>},
    {"HOOK_RUN", &decode_body<HookRun>},
    {"HOOK_RESULT", &decode_body<HookResult>},
    {"SHUTDOWN", &decode_body<Shutdown>},
    {"ACK", &decode_body<Ack>},
    {"ERROR", &decode_body<Error>},
    {"GOODBYE", &decode_body<Goodbye>},
}};

tl::unexpected<DecodeError> fail(Kind kind, std::string detail, std::uint32_t peer_major = 0) {
  return tl::make_unexpected(DecodeError{kind, std::move(detail), peer_major});
}

// Strings stay in the input buffer while we convert (no copy into the zone);
// everything is copied into the Message before decode() returns.
bool reference_strings(msgpack::type::object_type type, std::size_t /*size*/, void* /*user*/) {
  return type == msgpack::type::STR;
}

tl::expected<Message, DecodeError> decode_envelope(const msgpack::object& top) {
  if (top.type != msgpack::type::ARRAY) {
    return fail(Kind::BadEnvelope, "envelope: expected array, got " + std::string(type_name(top.type)));
  }
  const auto& env = top.via.array;
  // Signature and major come first so a future major may change the rest.
  if (env.size < 2 || env.ptr[0].type != msgpack::type::STR || as_view(env.ptr[0]) != kSignature) {
    return fail(Kind::BadEnvelope, "envelope: element 0 must be the string \"TIDE\"");
  }
  if (env.ptr[1].type != msgpack::type::POSITIVE_INTEGER) {
    return fail(Kind::BadEnvelope, "envelope: major version must be a uint");
  }
  if (env.ptr[1].via.u64 != kVersionMajor) {
    const auto major = env.ptr[1].via.u64;
    const auto clamped = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(major, std::numeric_limits<std::uint32_t>::max()));
    return fail(Kind::UnsupportedVersion, "envelope: major version " + std::to_string(major) +
                                              " not supported (speaks " + std::to_string(kVersionMajor) + ")",
                clamped);
  }
  if (env.size != 5) {
    return fail(Kind::BadEnvelope, "envelope: expected 5 elements, got " + std::to_string(env.size));
  }
  if (env.ptr[2].type != msgpack::type::POSITIVE_INTEGER) {
    return fail(Kind::BadEnvelope, "envelope: minor version must be a uint");
  }
  if (env.ptr[3].type != msgpack::type::STR) {
    return fail(Kind::BadEnvelope, "envelope: command must be a str");
  }
  const std::string_view command = as_view(env.ptr[3]);
  for (const auto& entry : kCommands) {
    if (entry.name == command) {
      if (env.ptr[4].type != msgpack::type::MAP) {
        return fail(Kind::BadEnvelope, std::string(command) + ": body must be a map, got " +
                                           std::string(type_name(env.ptr[4].type)));
      }
      return entry.decode(entry.name, env.ptr[4]);
    }
  }
  std::string shown(command.substr(0, 32));
  for (auto& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return fail(Kind::UnknownCommand, "envelope: unknown command \"" + shown + "\"");
}

}  // namespace

std::string_view to_string(DecodeError::Kind kind) {
  switch (kind) {
    case Kind::Oversized: return "oversized";
    case Kind::Malformed: return "malformed";
    case Kind::BadEnvelope: return "bad_envelope";
    case Kind::UnsupportedVersion: return "unsupported_version";
    case Kind::UnknownCommand: return "unknown_command";
    case Kind::WrongType: return "wrong_type";
    case Kind::OutOfBounds: return "out_of_bounds";
  }
  return "?";
}

tl::expected<void, DecodeError> validate(const Message& message) {
  return std::visit(
      [&](const auto& m) {
        Validator v(command_name(message));
        check(v, m);
        return v.result();
      },
      message);
}

std::vector<std::uint8_t> encode(const Message& message) {
  assert(validate(message).has_value() && "encode() of a message that does not validate");
  std::vector<std::uint8_t> out;
  out.reserve(256);
  Writer w(out);
  w.array(5);
  w.str(kSignature);
  w.u64(kVersionMajor);
  w.u64(kVersionMinor);
  w.str(command_name(message));
  std::visit([&](const auto& m) { write_body(w, m); }, message);
  return out;
}

tl::expected<Message, DecodeError> decode(std::span<const std::uint8_t> frame) {
  if (frame.size() > kMaxFrameBytes) {
    return fail(Kind::Oversized, "frame of " + std::to_string(frame.size()) + " bytes exceeds " +
                                     std::to_string(kMaxFrameBytes));
  }
  if (frame.empty()) return fail(Kind::Malformed, "empty frame");
  try {
    const msgpack::unpack_limit limit(kUnpackArray, kUnpackMap, kUnpackStr, kUnpackBin, kUnpackExt,
                                      kUnpackDepth);
    std::size_t offset = 0;
    const msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(frame.data()), frame.size(), offset,
                        &reference_strings, nullptr, limit);
    if (offset != frame.size()) {
      return fail(Kind::Malformed, std::to_string(frame.size() - offset) + " trailing bytes after the frame");
    }
    return decode_envelope(handle.get());
  } catch (const msgpack::size_overflow& e) {
    return fail(Kind::OutOfBounds, std::string("msgpack unpack limit exceeded: ") + e.what());
  } catch (const msgpack::insufficient_bytes&) {
    return fail(Kind::Malformed, "truncated msgpack");
  } catch (const msgpack::unpack_error& e) {
    return fail(Kind::Malformed, std::string("not msgpack: ") + e.what());
  } catch (const std::bad_alloc&) {
    return fail(Kind::Malformed, "out of memory while unpacking");
  } catch (const std::exception& e) {
    return fail(Kind::Malformed, std::string("unpack failed: ") + e.what());
  }
}

}  // namespace tide::protocol
