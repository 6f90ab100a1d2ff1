#include "common/logging/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

// journald: the sd-daemon priority prefix on stderr rather than spdlog's
// systemd_sink. That sink needs libsystemd (sd_journal_send), which neither
// daemon links otherwise (sd_notify is one datagram, common/systemd); a
// prefixed line on stderr is what journald's stream reader parses by default
// (SyslogLevelPrefix=yes), keeps the unit's stream attribution, and stays a
// readable line when the same binary runs outside systemd.

namespace tide::logging {
namespace {

// What the fatal-signal handler needs, set once before it is installed.
Format g_crash_format = Format::Plain;

bool parse_decimal(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

void append_time(std::string& out, std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  std::array<char, 64> buffer{};
  const long offset_min = local.tm_gmtoff / 60;
  const long abs_offset = offset_min < 0 ? -offset_min : offset_min;
  const int n = std::snprintf(buffer.data(), buffer.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld",
                              local.tm_year + 1900, local.tm_mon + 1, local.tm_mday, local.tm_hour, local.tm_min,
                              local.tm_sec, static_cast<int>(unix_ms % 1000), offset_min < 0 ? '-' : '+',
                              abs_offset / 60, abs_offset % 60);
  if (n > 0) out.append(buffer.data(), static_cast<std::size_t>(n));
}

// Every message through format_message, to stderr, one write per message so
// lines of concurrent writers never interleave.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StderrSink(Format format) : m_format(format) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const std::string text =
        format_message(m_format, msg.level, unix_ms, std::string_view(msg.payload.data(), msg.payload.size()));
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  Format m_format;
};

// Async-signal-safe pieces of the crash line: no allocation, no locale.
void append_number(char*& at, const char* end, std::uint64_t value, int width) {
  std::array<char, 24> digits{};
  int n = 0;
  do {
    digits[static_cast<std::size_t>(n++)] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && n < 20);
  for (; n < width && n < 20; ++n) digits[static_cast<std::size_t>(n)] = '0';
  while (n > 0 && at < end) *at++ = digits[static_cast<std::size_t>(--n)];
}

void append_text(char*& at, const char* end, const char* text) {
  while (*text != '\0' && at < end) *at++ = *text++;
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
  }
}

// The line the crash handler writes, in UTC (localtime_r is not
// async-signal-safe): civil date from days since the epoch (H. Hinnant).
void on_fatal_signal(int signal) {
  std::array<char, 160> line{};
  char* at = line.data();
  const char* end = line.data() + line.size() - 1;
  if (g_crash_format == Format::Journal) {
    append_text(at, end, "<2>");
  } else {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const std::int64_t seconds = now.tv_sec;
    std::int64_t days = seconds / 86400;
    const std::int64_t in_day = seconds % 86400;
    days += 719468;
    const std::int64_t era = days / 146097;
    const std::int64_t doe = days - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    append_number(at, end, static_cast<std::uint64_t>(year), 4);
    append_text(at, end, "-");
    append_number(at, end, static_cast<std::uint64_t>(month), 2);
    append_text(at, end, "-");
    append_number(at, end, static_cast<std::uint64_t>(day), 2);
    append_text(at, end, "T");
    append_number(at, end, static_cast<std::uint64_t>(in_day / 3600), 2);
    append_text(at, end, ":");
    append_number(at, end, static_cast<std::uint64_t>(in_day / 60 % 60), 2);
    append_text(at, end, ":");
    append_number(at, end, static_cast<std::uint64_t>(in_day % 60), 2);
    append_text(at, end, ".");
    append_number(at, end, static_cast<std::uint64_t>(now.tv_nsec / 1'000'000), 3);
    append_text(at, end, "+00:00 critical ");
  }
  append_text(at, end, "crashed: signal ");
  append_number(at, end, static_cast<std::uint64_t>(signal), 1);
  append_text(at, end, " (");
  append_text(at, end, signal_name(signal));
  append_text(at, end, ")\n");
  (void)!::write(STDERR_FILENO, line.data(), static_cast<std::size_t>(at - line.data()));
  // Die of the same signal: the exit status and a core dump stay what they were.
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

void install_crash_handlers(Format format) {
  g_crash_format = format;
  for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    struct sigaction current {};
    // A handler someone else installed (a sanitizer's) stays: its report is better.
    if (::sigaction(signal, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) continue;
    struct sigaction action {};
    action.sa_handler = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = static_cast<int>(SA_RESETHAND);
    ::sigaction(signal, &action, nullptr);
  }
  std::set_terminate([] {
    std::string what = "unknown exception";
    if (const auto current = std::current_exception()) {
      try {
        std::rethrow_exception(current);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
    }
    spdlog::critical("terminating: uncaught exception: {}", what);
    // The abort below is this one, already logged.
    ::signal(SIGABRT, SIG_DFL);
    std::abort();
  });
}

}  // namespace

bool is_journal_stream(std::string_view journal_stream, int fd) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  if (!parse_decimal(journal_stream.substr(0, colon), device) || !parse_decimal(journal_stream.substr(colon + 1), inode)) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<std::uint64_t>(st.st_dev) == device && static_cast<std::uint64_t>(st.st_ino) == inode;
}

Format stderr_format() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  return stream != nullptr && is_journal_stream(stream, STDERR_FILENO) ? Format::Journal : Format::Plain;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;
    case spdlog::level::info: return 6;
    case spdlog::level::warn: return 4;
    case spdlog::level::err: return 3;
    case spdlog::level::critical: return 2;
    case spdlog::level::off:
    case spdlog::level::n_levels: break;
  }
  return 6;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warning";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    case spdlog::level::off:
    case spdlog::level::n_levels: break;
  }
  return "info";
}

std::string format_message(Format format, spdlog::level::level_enum level, std::int64_t unix_ms,
                           std::string_view message) {
  std::string prefix;
  if (format == Format::Journal) {
    prefix = "<" + std::to_string(syslog_priority(level)) + ">";
  } else {
    append_time(prefix, unix_ms);
    prefix += ' ';
    prefix += level_name(level);
    prefix += ' ';
  }
  // A trailing newline ends the message; it does not start an empty line.
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.remove_suffix(1);
  std::string out;
  out.reserve(prefix.size() + message.size() + 1);
  std::size_t start = 0;
  while (true) {
    const auto newline = message.find('\n', start);
    std::string_view line = message.substr(start, newline == std::string_view::npos ? std::string_view::npos : newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out += prefix;
    out += line;
    out += '\n';
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  return out;
}

void setup(spdlog::level::level_enum level) {
  const Format format = stderr_format();
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<StderrSink>(format));
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(level);
  install_crash_handlers(format);
}

std::optional<std::uint64_t> RateLimit::admit(std::uint64_t now_ms) {
  if (!m_started || now_ms - m_window_start_ms >= m_window_ms) {
    m_started = true;
    m_window_start_ms = now_ms;
    m_written = 0;
  }
  if (m_written >= m_burst) {
    ++m_suppressed;
    return std::nullopt;
  }
  ++m_written;
  const std::uint64_t held = m_suppressed;
  m_suppressed = 0;
  return held;
}

std::string suppressed_note(std::uint64_t suppressed) {
  if (suppressed == 0) return {};
  return " (" + std::to_string(suppressed) + " similar line" + (suppressed == 1 ? "" : "s") + " suppressed)";
}

}  // namespace tide::logging
