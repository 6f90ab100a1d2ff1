// What the admin API needs to serve the web console (docs/console.md): its
// static files, the session cookie and one-time login codes.
//
// The console is a single page that calls the same admin API with a cookie
// instead of a bearer header. The cookie carries no secret of its own: it is
// derived from the API token, so every coordinator with that token (and a
// restarted one) accepts it, and changing the token logs every console out.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tide::coordinator {

inline constexpr std::string_view kConsoleCookie = "tide_console";
// Sent by the console on every request. A cross-site form or image cannot set
// a header, and a cross-site script may only with a CORS preflight, which
// this API never grants: a cookie-authenticated change without it is refused.
inline constexpr std::string_view kConsoleHeader = "X-Tide-Console";

struct ConsoleAsset {
  std::string body;
  std::string content_type;
  std::string etag;  // quoted, from the content
};

// The built console (index.html, app.js, ...) read into memory once: they
// never change while the coordinator runs, and serving them needs no loop.
class ConsoleAssets {
 public:
  // Every regular file under `dir`, by its path relative to it ("app.js",
  // "fonts/x.woff2"). A missing directory gives an empty set (not built).
  [[nodiscard]] static ConsoleAssets load(const std::filesystem::path& dir);

  [[nodiscard]] bool built() const { return m_files.count("index.html") != 0; }
  [[nodiscard]] const ConsoleAsset* find(std::string_view relative) const;
  [[nodiscard]] std::size_t size() const { return m_files.size(); }
  [[nodiscard]] const std::filesystem::path& dir() const { return m_dir; }

 private:
  std::filesystem::path m_dir;
  std::map<std::string, ConsoleAsset, std::less<>> m_files;
};

// The Content-Type for a file name's extension.
[[nodiscard]] std::string content_type_for(std::string_view name);

// The page /console/ answers when the console's files are not there.
[[nodiscard]] std::string console_not_built_page(const std::filesystem::path& dir);

// The session cookie's value for an API token.
[[nodiscard]] std::string console_session_value(std::string_view token);

// Equal, in a time that does not depend on where they differ.
[[nodiscard]] bool same_secret(std::string_view a, std::string_view b);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), if present.
[[nodiscard]] std::optional<std::string> cookie_value(std::string_view header,
                                                      std::string_view name);

// One-time login codes (`tidectl console url`, the demo's link): each is
// good once, until it expires. Thread-safe: issued on the loop, taken on the
// HTTP thread.
class LoginCodes {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxOpen = 64;  // the oldest is dropped beyond this

  [[nodiscard]] std::string issue(std::chrono::milliseconds ttl,
                                  Clock::time_point now = Clock::now());
  // True once for a code issued and not expired; false for any other text.
  [[nodiscard]] bool take(std::string_view code, Clock::time_point now = Clock::now());
  [[nodiscard]] std::size_t open() const;

 private:
  mutable std::mutex m_mutex;
  std::map<std::string, Clock::time_point, std::less<>> m_codes;  // code -> expiry
};

}  // namespace tide::coordinator
