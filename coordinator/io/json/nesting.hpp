// The nesting limit of every JSON document tide parses from outside (admin
// API bodies, apply documents): checked on the text before it is parsed, so
// that no parser or recursive walk can exhaust the stack.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace tide::coordinator {

// Documents nest at most this deep (arrays and objects); deeper ones are
// refused with 400 before they are parsed.
inline constexpr std::size_t kMaxJsonDepth = 64;

// The offset of the first bracket that opens level max_depth + 1, if any.
// Brackets inside strings do not count.
[[nodiscard]] std::optional<std::size_t> json_nesting_over(std::string_view text, std::size_t max_depth);

}  // namespace tide::coordinator
