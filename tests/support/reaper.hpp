// Ties the processes a test starts to the test's life, for tests whose
// processes outlive their direct children: the system tests' fleets and the
// integration tests' in-process coordinator, whose local provider launches
// instances (launcher, application, agent) detached from it so that they
// survive coordinator restarts. scripts/fleet-leftovers relies on the
// `tide-owner` file a Reaper writes.
#pragma once

#include <chrono>
#include <filesystem>
#include <vector>

#include <sys/types.h>

namespace tide::test_support {

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
std::vector<pid_t> kill_processes_in(const std::filesystem::path& dir,
                                     std::chrono::milliseconds timeout);

}  // namespace tide::test_support
