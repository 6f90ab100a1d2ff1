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

// Ties everything a test starts under `dir` to the test's life. A system
// test's fleet outlives its direct children: the local provider detaches
// every instance (launcher, application, agent) from the coordinator so that
// instances survive coordinator restarts, and HAProxy may be left running on
// purpose. So at construction a reaper process is forked off (double-forked
// into its own session, out of the test's process tree, which ctest kills on a
// time-out) that waits on a pipe only the test process holds. However the test
// ends — returning, a failed REQUIRE, ctest's SIGKILL, Ctrl-C — the pipe
// closes. After a normal finish() the reaper just exits; otherwise it kills
// every process that belongs to `dir` (see processes_in) until none is left,
// and writes what it killed to `dir`/reaper.log.
//
// It also writes `dir`/tide-owner ("<pid> <start time>" of the test process):
// scripts/fleet-leftovers tells a live test's fleet from one left behind.
class Reaper {
 public:
  explicit Reaper(std::filesystem::path dir);
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  // Kills what is left under `dir` now and lets the reaper go (idempotent).
  void finish();

 private:
  std::filesystem::path m_dir;
  int m_pipe = -1;  // write end; the reaper holds the read end
};

// Processes that belong to `dir`: their command line or environment names it
// (a path in it, or the path itself), or their working directory is in it.
// The caller itself is never listed.
[[nodiscard]] std::vector<pid_t> processes_in(const std::filesystem::path& dir);

// SIGKILLs processes_in(dir) until none is left (at most `timeout`); returns
// the pids it killed.
std::vector<pid_t> kill_processes_in(const std::filesystem::path& dir, std::chrono::milliseconds timeout);

// A free TCP port on 127.0.0.1 (bound then released).
[[nodiscard]] std::uint16_t free_port();

// Polls `condition` every 100 ms until it holds or `timeout` passes.
bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& condition);

struct HttpResult {
  int status = 0;  // 0 = no answer
  nlohmann::json body;
  std::string text;
};
HttpResult http(const std::string& method, const std::string& base, const std::string& path,
                const std::optional<nlohmann::json>& body = std::nullopt);

// Processes whose command line contains `needle`.
[[nodiscard]] std::vector<pid_t> processes_matching(const std::string& needle);

struct WrkResult {
  std::uint64_t requests = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t socket_errors = 0;
  std::string output;
};
[[nodiscard]] WrkResult parse_wrk(const std::string& output);

[[nodiscard]] std::string read_file(const std::filesystem::path& path);
[[nodiscard]] std::filesystem::path make_temp_dir(const std::string& prefix);

}  // namespace tide::system_test
