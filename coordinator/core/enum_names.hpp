// One table per enum holds each value's single spelling; name_of() and
// value_of() read it both ways (model.cpp, policy_model.cpp).
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace tide::coordinator::detail {

template <class E, std::size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

template <class E, std::size_t N>
std::string_view name_of(const Names<E, N>& names, E value) {
  for (const auto& [v, n] : names) {
    if (v == value) return n;
  }
  return "unknown";  // unreachable for a valid enumerator
}

template <class E, std::size_t N>
std::optional<E> value_of(const Names<E, N>& names, std::string_view text) {
  for (const auto& [v, n] : names) {
    if (n == text) return v;
  }
  return std::nullopt;
}

}  // namespace tide::coordinator::detail
