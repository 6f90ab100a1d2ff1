#pragma once
// How both daemons write their log: one line per message on stderr, with a
// time stamp (RFC 3339, milliseconds, zone offset) and a level name, or —
// when stderr is journald's stream — with an sd-daemon priority prefix
// ("<4>") and no time stamp, since journald records its own time and files
// the line under that priority (`journalctl -p warning`).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/common.h>

namespace tide::logging {

enum class Format : std::uint8_t {
  Plain,    // "2026-12-06T07:01:02.345+00:00 warning message"
  Journal,  // "<4>message"
};

// Whether `journal_stream` ($JOURNAL_STREAM, "<device>:<inode>" in decimal,
// systemd.exec(5)) names the open file `fd` refers to. systemd sets the
// variable for a service whose output goes to the journal; a process that
// inherited it but writes elsewhere (a shell redirect, a child with its own
// log file) does not match.
[[nodiscard]] bool is_journal_stream(std::string_view journal_stream, int fd);

// Journal when stderr is the stream $JOURNAL_STREAM names, Plain otherwise.
[[nodiscard]] Format stderr_format();

// The syslog priority sd-daemon(3) prefixes stand for: 7 debug (and trace),
// 6 info, 4 warning, 3 error, 2 critical.
[[nodiscard]] int syslog_priority(spdlog::level::level_enum level);

// The level's name as it appears in Plain lines: trace, debug, info,
// warning, error, critical.
[[nodiscard]] std::string_view level_name(spdlog::level::level_enum level);

// One message as the line(s) written for it, each ending in '\n'. A message
// of several lines becomes that many lines, each with the time and level (or
// priority prefix), so no line of the log lacks them.
[[nodiscard]] std::string format_message(Format format, spdlog::level::level_enum level, std::int64_t unix_ms,
                                         std::string_view message);

// Makes the default logger write to stderr in stderr_format(), at `level`,
// and installs handlers that log a fatal signal or an uncaught exception
// (critical) before the process dies with it.
void setup(spdlog::level::level_enum level);

// At most `burst` lines per `window_ms` for one kind of message that a peer
// can provoke at will (a refused HELLO): the log stays readable and a hostile
// peer cannot flood it. admit() answers whether a line may be written now
// and, when it may, how many were held back since the last one written.
class RateLimit {
 public:
  RateLimit(std::uint32_t burst, std::uint64_t window_ms) : m_burst(burst), m_window_ms(window_ms) {}
  [[nodiscard]] std::optional<std::uint64_t> admit(std::uint64_t now_ms);

 private:
  std::uint32_t m_burst;
  std::uint64_t m_window_ms;
  std::uint64_t m_window_start_ms = 0;
  std::uint32_t m_written = 0;
  std::uint64_t m_suppressed = 0;
  bool m_started = false;
};

// " (N similar lines suppressed)" for N > 0, else "".
[[nodiscard]] std::string suppressed_note(std::uint64_t suppressed);

}  // namespace tide::logging
