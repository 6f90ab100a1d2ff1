// Readiness probes and health checks on the loop: HTTP GET, TCP connect and
// exec. Each attempt is bounded by the probe's timeout; one attempt at a time
// per probe, started as agent/core/probe_schedule.hpp says (every
// startup_period_ms until the probe first passes, then every period_ms).
//
// Hosts must be IP literals (or "localhost"): resolving names would need
// libuv's thread pool, and an agent probes its own instance anyway.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/core/probe_schedule.hpp"
#include "agent/io/config.hpp"

namespace tide::agent {

struct ProbeOutcome {
  bool success = false;
  std::string message;
  std::uint32_t latency_ms = 0;
};

using ProbeDoneFn = std::function<void(const ProbeOutcome&)>;

// One attempt of each kind; done runs exactly once, on the loop.
void http_probe(uv_loop_t* loop, const std::string& url, std::uint32_t timeout_ms, ProbeDoneFn done);
void tcp_probe(uv_loop_t* loop, const std::string& address, std::uint32_t timeout_ms, ProbeDoneFn done);
void exec_probe(uv_loop_t* loop, const std::string& command, std::uint32_t timeout_ms, ProbeDoneFn done);

// Records one outcome and returns whether the probe passes now.
using ProbeResultFn = std::function<bool(const ProbeOutcome&)>;

// Runs one configured probe periodically and hands each outcome to on_result;
// what on_result returns moves the probe from its startup period to its
// period.
class ProbeRunner {
 public:
  ProbeRunner(uv_loop_t* loop, ProbeConfig config, ProbeTiming timing, ProbeResultFn on_result);
  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  void start();
  // Stops the timer; an attempt in flight finishes but is not reported.
  void stop();

 private:
  void attempt();
  void finished(const ProbeOutcome& outcome);
  void arm();
  static void on_timer(uv_timer_t* timer);

  uv_loop_t* m_loop;
  ProbeConfig m_config;
  ProbeTiming m_timing;
  ProbeResultFn m_on_result;
  uv_timer_t* m_timer;  // freed in its close callback
  std::optional<ProbeSchedule> m_schedule;  // from start() to stop()
  std::shared_ptr<bool> m_alive;
};

}  // namespace tide::agent
