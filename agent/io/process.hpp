// Runs a shell command (/bin/sh -c) on the loop with a timeout, keeping the
// tail of its stdout+stderr. Used by exec probes, lifecycle hooks and the
// drain / pre-stop commands. The child runs in its own process group so a
// timeout kills everything it started.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace tide::agent {

struct ProcessResult {
  int exit_status = -1;   // exit code; -1 when killed by a signal or it failed to start
  bool timed_out = false;
  std::string output;     // tail of stdout+stderr, at most max_output bytes
  std::string error;      // why it failed to start, if it did
  std::uint64_t duration_ms = 0;
};

using ProcessDoneFn = std::function<void(const ProcessResult&)>;

// Starts the command; done runs exactly once, on the loop (also when the
// command could not start). Returns false only when done already ran.
bool run_process(uv_loop_t* loop, const std::string& command, std::uint32_t timeout_ms,
                 std::size_t max_output, ProcessDoneFn done);

}  // namespace tide::agent
