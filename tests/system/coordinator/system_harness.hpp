// A harness for system tests: real processes on loopback, bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/reaper.hpp"

namespace tide::system_test {

// A child process (its own process group); killed on destruction, and by the
// kernel (PR_SET_PDEATHSIG) when the test process dies first.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::filesystem::path& log_file,
        const std::map<std::string, std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void signal(int signo) const;
  // Waits up to `timeout` for the exit; returns the wait status or nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] pid_t pid() const { return m_pid; }

 private:
  pid_t m_pid = -1;
  bool m_reaped = false;
};

using test_support::kill_processes_in;
using test_support::processes_in;
using test_support::Reaper;

// A free TCP port on 127.0.0.1 (bound then released).
[[nodiscard]] std::uint16_t free_port();

// Polls `condition` every 100 ms until it holds or `timeout` passes.
bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& condition);

struct HttpResult {
  int status = 0;  // 0 = no answer
  nlohmann::json body;
  std::string text;
};
// `token`: sent as "Authorization: Bearer <token>" when not empty.
HttpResult http(const std::string& method, const std::string& base, const std::string& path,
                const std::optional<nlohmann::json>& body = std::nullopt, const std::string& token = "");

// Processes whose command line contains `needle`.
[[nodiscard]] std::vector<pid_t> processes_matching(const std::string& needle);

struct WrkResult {
  std::uint64_t requests = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t socket_errors = 0;
  std::string output;
};
[[nodiscard]] WrkResult parse_wrk(const std::string& output);

struct ShellRun {
  int exit_code = -1;  // -1: killed, or still running at the time-out
  std::string output;  // stdout and stderr
};
// Runs `command` with /bin/sh, its output going to `log` (truncated first),
// and waits up to `timeout` for it.
[[nodiscard]] ShellRun run_shell(const std::string& command, const std::filesystem::path& log,
                                 std::chrono::milliseconds timeout);

[[nodiscard]] std::string read_file(const std::filesystem::path& path);
[[nodiscard]] std::filesystem::path make_temp_dir(const std::string& prefix);

}  // namespace tide::system_test
