// Words for an application that exited: the pure part of the local
// provider's exit reports (no I/O), so it can be tested on plain strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tide::provider {

inline constexpr std::size_t kOutputTailBytes = 1024;  // read from the end of the log
inline constexpr std::size_t kOutputTailLines = 5;

// The last max_lines non-blank lines of text, joined by " | ". text is the end
// of a log; when cut is true it starts mid-file, so its first (partial) line
// is dropped unless it is the only one. Control characters and invalid UTF-8
// become '?', so the result is safe in JSON and on one log line.
[[nodiscard]] std::string output_tail(std::string_view text, bool cut,
                                      std::size_t max_lines = kOutputTailLines);

// The signal N behind a shell's exit status 128 + N (1..64), else 0.
[[nodiscard]] int signal_from_shell_status(int exit_status);

// "application exited with status 3 after 0.04 s; last output: ...",
// "application was killed by signal 9 (SIGKILL) after 1.20 s", or, when
// exit_status is -1, "application exited (status unknown: ...) after ...".
[[nodiscard]] std::string describe_app_exit(int exit_status, std::int64_t uptime_ms,
                                            std::string_view tail);

}  // namespace tide::provider
