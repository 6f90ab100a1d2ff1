#include "coordinator/io/provider/exit_report.hpp"

#include <array>
#include <cstdio>
#include <cstring>  // sigabbrev_np (GNU)
#include <vector>

namespace tide::provider {
namespace {

// Appends line to out with control characters and invalid UTF-8 replaced.
void append_sanitised(std::string& out, std::string_view line) {
  std::size_t i = 0;
  while (i < line.size()) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x80) {
      out.push_back(c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c));
      ++i;
      continue;
    }
    // The length of a well-formed sequence starting here, and the range its
    // second byte must fall in (excludes overlong forms and surrogates).
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    }
    bool ok = len != 0 && i + len <= line.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(line[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xbf);
    }
    if (!ok) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(line.substr(i, len));
    i += len;
  }
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

}  // namespace

std::string output_tail(std::string_view text, bool cut, std::size_t max_lines) {
  if (cut) {
    const auto nl = text.find('\n');
    if (nl != std::string_view::npos && !blank(text.substr(nl + 1))) text.remove_prefix(nl + 1);
  }
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!blank(line)) lines.push_back(line);
  }
  const std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (i != first) out += " | ";
    append_sanitised(out, lines[i]);
  }
  return out;
}

int signal_from_shell_status(int exit_status) {
  return exit_status > 128 && exit_status <= 128 + 64 ? exit_status - 128 : 0;
}

std::string describe_app_exit(int exit_status, std::int64_t uptime_ms, std::string_view tail) {
  std::array<char, 48> after{};
  std::snprintf(after.data(), after.size(), "after %.2f s",
                static_cast<double>(uptime_ms < 0 ? 0 : uptime_ms) / 1000.0);
  std::string text;
  if (exit_status < 0) {
    text = "application exited (status unknown: its launcher was gone) " + std::string(after.data());
  } else if (const int sig = signal_from_shell_status(exit_status); sig != 0) {
    const char* abbrev = ::sigabbrev_np(sig);
    text = "application was killed by signal " + std::to_string(sig) +
           (abbrev != nullptr ? " (SIG" + std::string(abbrev) + ")" : std::string()) + " " +
           after.data();
  } else {
    text = "application exited with status " + std::to_string(exit_status) + " " + after.data();
  }
  if (!tail.empty()) {
    text += "; last output: ";
    text += tail;
  }
  return text;
}

}  // namespace tide::provider
