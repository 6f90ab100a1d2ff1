// Runs one short-lived helper process (an exec provider script): feeds it
// stdin, collects stdout and stderr, and kills it when it overruns its
// timeout. Everything happens on the loop through uv_spawn, pipes and a timer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tl/expected.hpp>
#include <uv.h>

namespace tide::provider {

struct SubprocessRequest {
  std::vector<std::string> argv;       // argv[0] is the program path
  std::vector<std::string> env;        // "NAME=value" entries; the full environment
  std::string cwd;                     // empty: inherit
  std::string stdin_data;              // written then closed
  std::uint32_t timeout_ms = 30'000;   // then SIGKILL to its process group
  std::size_t max_output_bytes = 1 << 20;  // per stream; the rest is dropped
};

struct SubprocessResult {
  std::int64_t exit_status = 0;
  int term_signal = 0;
  bool timed_out = false;
  bool output_truncated = false;
  std::string stdout_data;
  std::string stderr_data;
};

// Calls done exactly once, on the loop thread, after the process has exited
// and both of its output pipes are closed (or on spawn failure, with the
// reason). The process runs in its own process group so a timeout also kills
// what it started in the foreground.
void run_subprocess(uv_loop_t* loop, SubprocessRequest request,
                    std::function<void(tl::expected<SubprocessResult, std::string>)> done);

}  // namespace tide::provider
