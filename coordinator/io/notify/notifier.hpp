// Notifier: delivers webhook messages (coordinator/core/notification.hpp)
// over the loop's HTTP client (coordinator/io/http/http_client.hpp): no
// webhook that hangs can block the loop.
//
// Delivery: a 2xx answer is success. A network error, a time-out, a 5xx or a
// 429 is retried after an exponential back-off with jitter, up to
// max_attempts attempts in all; any other answer (4xx, 3xx: redirects are
// not followed) is a failure at once. Waiting messages are bounded: when
// max_pending are waiting, the oldest is dropped and counted.
//
// Everything happens on the loop thread: call send(), stats() and close()
// from it only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <uv.h>

#include "coordinator/core/notification.hpp"
#include "coordinator/io/http/http_client.hpp"

namespace tide::notify {

using coordinator::OutgoingNotification;

struct NotifierConfig {
  std::uint32_t request_timeout_ms = 5'000;  // one attempt, connect included
  std::uint32_t connect_timeout_ms = 2'000;
  std::uint32_t max_attempts = 5;            // the first attempt included; >= 1
  std::uint32_t initial_backoff_ms = 1'000;  // before the 2nd attempt; doubles each time
  std::uint32_t max_backoff_ms = 60'000;     // cap of one back-off (before jitter)
  double jitter = 0.2;                       // each back-off is scaled by U[1 - jitter, 1 + jitter]
  std::size_t max_pending = 1'000;           // waiting for a first attempt or a retry
  std::size_t max_in_flight = 16;            // concurrent requests; >= 1
  std::string user_agent = "tide-coordinator";
};

// Counters for the coordinator's /metrics (docs/notifications.md names them).
struct NotifierStats {
  std::uint64_t sent = 0;      // delivered: a 2xx answer
  std::uint64_t failed = 0;    // gave up: a non-retryable answer or error, or attempts exhausted
  std::uint64_t retried = 0;   // attempts scheduled again after a retryable failure
  std::uint64_t dropped = 0;   // oldest waiting messages dropped from a full queue
  std::uint64_t timeouts = 0;  // attempts that ran out of time (connect or request)
  std::size_t in_flight = 0;   // requests on the wire now
  std::size_t pending = 0;     // messages waiting for an attempt
};

// What became of one message, for logs and tests.
struct DeliveryResult {
  std::string target;
  std::string url;
  bool delivered = false;
  std::uint32_t attempts = 0;
  long http_status = 0;  // the last answer's status; 0 when none arrived
  std::string error;     // why the last attempt failed; empty when delivered
};

class Notifier {
 public:
  // `seed` feeds the back-off jitter, so tests (and a fleet of coordinators
  // seeded differently) are reproducible yet do not retry in lock-step.
  Notifier(uv_loop_t* loop, NotifierConfig config, std::uint64_t seed);
  ~Notifier();  // close()
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues a message; the first attempt starts as soon as a request slot is
  // free. After close() messages are dropped (and counted).
  void send(OutgoingNotification message);
  void send(std::vector<OutgoingNotification> messages);

  // Called on the loop once per message that was delivered or given up on
  // (not for dropped ones, nor for those close() discards).
  void on_result(std::function<void(const DeliveryResult&)> callback);

  [[nodiscard]] NotifierStats stats() const;

  // Cancels requests in flight and discards waiting messages (neither is
  // counted as failed), and closes every handle; once the loop has run its
  // close callbacks nothing of the Notifier's is left on it. Idempotent.
  void close();

 private:
  struct Job;
  struct TimerBox;

  static void on_retry_timer(uv_timer_t* handle);

  void pump();
  void start(std::unique_ptr<Job> job);
  void finished(Job* job, http::HttpResponse response);
  // Counts the attempt's outcome; true when the message is to be retried.
  [[nodiscard]] bool finish(Job& job, const http::HttpResponse& response);
  void give_up(Job& job, std::string error);
  void enqueue(std::unique_ptr<Job> job);
  void report(const Job& job, bool delivered, const std::string& error);
  [[nodiscard]] std::uint64_t backoff_ms(std::uint32_t attempts_made);

  uv_loop_t* m_loop;
  NotifierConfig m_config;
  std::mt19937_64 m_random;
  http::HttpClient m_http;
  TimerBox* m_retry_timer = nullptr;
  std::deque<std::unique_ptr<Job>> m_pending;  // oldest first (by sequence number)
  std::vector<std::unique_ptr<Job>> m_in_flight;
  std::function<void(const DeliveryResult&)> m_on_result;
  NotifierStats m_stats;
  std::uint64_t m_next_sequence = 0;
  bool m_closed = false;
};

}  // namespace tide::notify
