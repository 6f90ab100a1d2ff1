// Fields: reads typed fields of one JSON object and refuses unknown keys.
// Shared by every parser of API bodies and stored specs, so each refuses bad
// input the same way: a JsonError naming the field, nothing half-read.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/core/duration.hpp"
#include "coordinator/io/json/json_model.hpp"

namespace tide::coordinator {

using nlohmann::json;

// Reads typed fields of one JSON object and refuses unknown keys.
class Fields {
 public:
  explicit Fields(const json& body, std::string prefix = "") : m_body(body), m_prefix(std::move(prefix)) {}

  [[nodiscard]] tl::unexpected<JsonError> fail(const std::string& key, std::string message) const {
    return tl::unexpected<JsonError>(JsonError{m_prefix + key, std::move(message)});
  }

  [[nodiscard]] bool has(const std::string& key) {
    m_known.insert(key);
    return m_body.contains(key) && !m_body[key].is_null();
  }

  tl::expected<void, JsonError> text(const std::string& key, std::string& out, std::size_t max_length = 4096) {
    if (!has(key)) return {};
    if (!m_body[key].is_string()) return fail(key, "must be a string");
    out = m_body[key].get<std::string>();
    if (out.size() > max_length) return fail(key, "longer than " + std::to_string(max_length) + " bytes");
    return {};
  }

  template <class T>
  tl::expected<void, JsonError> integer(const std::string& key, T& out, T low, T high) {
    if (!has(key)) return {};
    const json& value = m_body[key];
    if (!value.is_number_integer()) return fail(key, "must be an integer");
    const bool too_big = value.is_number_unsigned() &&
                         value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX);
    if (too_big || value.get<std::int64_t>() < static_cast<std::int64_t>(low) ||
        value.get<std::int64_t>() > static_cast<std::int64_t>(high)) {
      return fail(key, "must be " + std::to_string(low) + ".." + std::to_string(high));
    }
    out = static_cast<T>(value.get<std::int64_t>());
    return {};
  }

  // A duration given as `<stem>_ms` (integer milliseconds) or as `<stem>`
  // with the text people type ("500ms", "10s", "5m", "1h30m"), not both:
  // one syntax in the CLI, the YAML files and the API (core/duration.hpp).
  template <class T>
  tl::expected<void, JsonError> duration(const std::string& stem, T& out, T low, T high) {
    const std::string ms_key = stem + "_ms";
    const bool has_ms = has(ms_key);
    const bool has_text = has(stem);
    if (has_ms && has_text) return fail(stem, "give either " + stem + " or " + ms_key + ", not both");
    if (has_ms) return integer(ms_key, out, low, high);
    if (!has_text) return {};
    if (!m_body[stem].is_string()) {
      return fail(stem, "must be a duration such as \"10s\" or \"500ms\" (or give " + ms_key + " in milliseconds)");
    }
    const auto ms = parse_duration(m_body[stem].get<std::string>());
    if (!ms) return fail(stem, ms.error());
    if (*ms < static_cast<std::int64_t>(low) || *ms > static_cast<std::int64_t>(high)) {
      return fail(stem, "must be " + typed_duration(static_cast<std::int64_t>(low)) + ".." +
                            typed_duration(static_cast<std::int64_t>(high)));
    }
    out = static_cast<T>(*ms);
    return {};
  }

  // The key a duration was given under, `<stem>` or `<stem>_ms`, for an
  // error found after reading it.
  [[nodiscard]] std::string duration_key(const std::string& stem) const {
    return m_body.contains(stem) ? stem : stem + "_ms";
  }

  tl::expected<void, JsonError> number(const std::string& key, double& out, double low, double high) {
    if (!has(key)) return {};
    if (!m_body[key].is_number()) return fail(key, "must be a number");
    const double value = m_body[key].get<double>();
    if (!(value >= low && value <= high)) return fail(key, "must be between " + std::to_string(low) + " and " + std::to_string(high));
    out = value;
    return {};
  }

  tl::expected<void, JsonError> boolean(const std::string& key, bool& out) {
    if (!has(key)) return {};
    if (!m_body[key].is_boolean()) return fail(key, "must be true or false");
    out = m_body[key].get<bool>();
    return {};
  }

  [[nodiscard]] tl::expected<void, JsonError> no_unknown_keys() const {
    for (const auto& [key, value] : m_body.items()) {
      if (m_known.count(key) == 0) return fail(key, "unknown field");
    }
    return {};
  }

  [[nodiscard]] const json& at(const std::string& key) const { return m_body[key]; }

 private:
  const json& m_body;
  std::string m_prefix;
  std::set<std::string> m_known;
};

#define TIDE_JSON_TRY(expr)                                        \
  do {                                                             \
    if (auto tide_ok_ = (expr); !tide_ok_) {                       \
      return tl::make_unexpected(std::move(tide_ok_.error()));     \
    }                                                              \
  } while (false)


}  // namespace tide::coordinator
