// Durations as people type them, the one syntax of the CLI, the YAML files
// and the API: "500ms", "10s", "5m", "1h", "2d", or a compound of those
// ("1h30m", "2m30s"). Every `<name>_ms` field of the API also accepts
// `<name>` with such a text (io/json/fields.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace tide::coordinator {

// The duration in milliseconds. With `bare_seconds` a plain number means
// seconds (the CLI's historical flags, `--cooldown 60`); without it a unit
// is required. Fails with a message that shows the accepted forms.
[[nodiscard]] tl::expected<std::int64_t, std::string> parse_duration(std::string_view text, bool bare_seconds = false);

// A millisecond duration the way it is typed back: "10s", "5m", "1h30m",
// "1500ms" (milliseconds only when the value is not whole seconds), "0s".
// parse_duration(typed_duration(ms)) == ms for every ms >= 0.
[[nodiscard]] std::string typed_duration(std::int64_t ms);

}  // namespace tide::coordinator
