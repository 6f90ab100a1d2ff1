#include "coordinator/io/notify/notifier.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

namespace tide::notify {
namespace {

// WeCom robot URLs carry their secret in the query (?key=...): logs show the
// URL without it.
std::string loggable(const std::string& url) {
  const auto query = url.find('?');
  return query == std::string::npos ? url : url.substr(0, query) + "?...";
}

template <class Box>
void close_box(Box* box) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&box->handle);
  if (uv_is_closing(handle) != 0) return;
  handle->data = box;
  uv_close(handle, [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
}

}  // namespace

struct Notifier::Job {
  OutgoingNotification message;
  std::uint64_t sequence = 0;
  std::uint32_t attempts = 0;  // attempts started so far
  std::uint64_t due_ms = 0;    // uv_now() from which the next attempt may start
  long http_status = 0;
  std::string last_error;
};

struct Notifier::TimerBox {
  uv_timer_t handle{};
  Notifier* owner = nullptr;
};

Notifier::Notifier(uv_loop_t* loop, NotifierConfig config, std::uint64_t seed)
    : m_loop(loop), m_config(std::move(config)), m_random(seed), m_http(loop, m_config.user_agent) {
  m_config.max_attempts = std::max<std::uint32_t>(m_config.max_attempts, 1);
  m_config.max_in_flight = std::max<std::size_t>(m_config.max_in_flight, 1);
  m_config.max_pending = std::max<std::size_t>(m_config.max_pending, 1);
  m_config.jitter = std::clamp(m_config.jitter, 0.0, 1.0);

  m_retry_timer = new TimerBox{};
  m_retry_timer->owner = this;
  uv_timer_init(m_loop, &m_retry_timer->handle);
  m_retry_timer->handle.data = m_retry_timer;
}

Notifier::~Notifier() {
  close();
}

void Notifier::on_result(std::function<void(const DeliveryResult&)> callback) {
  m_on_result = std::move(callback);
}

NotifierStats Notifier::stats() const {
  NotifierStats stats = m_stats;
  stats.in_flight = m_in_flight.size();
  stats.pending = m_pending.size();
  return stats;
}

void Notifier::send(std::vector<OutgoingNotification> messages) {
  for (auto& message : messages) send(std::move(message));
}

void Notifier::send(OutgoingNotification message) {
  if (m_closed) {
    ++m_stats.dropped;
    spdlog::warn("notify: notifier closed, dropped notification to {}", message.target);
    return;
  }
  auto job = std::make_unique<Job>();
  job->message = std::move(message);
  job->sequence = m_next_sequence++;
  job->due_ms = uv_now(m_loop);
  enqueue(std::move(job));
  pump();
}

void Notifier::enqueue(std::unique_ptr<Job> job) {
  // Oldest first, so a retry goes back to its place among newer messages
  // and the overflow rule (drop the oldest) means the oldest event.
  const auto at = std::upper_bound(m_pending.begin(), m_pending.end(), job->sequence,
                                   [](std::uint64_t sequence, const std::unique_ptr<Job>& other) {
                                     return sequence < other->sequence;
                                   });
  m_pending.insert(at, std::move(job));
  while (m_pending.size() > m_config.max_pending) {
    ++m_stats.dropped;
    spdlog::warn("notify: queue full ({} waiting), dropped the oldest notification to {}",
                 m_config.max_pending, m_pending.front()->message.target);
    m_pending.pop_front();
  }
}

void Notifier::pump() {
  if (m_closed) return;
  const std::uint64_t now = uv_now(m_loop);
  while (m_in_flight.size() < m_config.max_in_flight) {
    auto due = std::find_if(m_pending.begin(), m_pending.end(),
                            [now](const std::unique_ptr<Job>& job) { return job->due_ms <= now; });
    if (due == m_pending.end()) break;
    auto job = std::move(*due);
    m_pending.erase(due);
    start(std::move(job));
    if (m_closed) return;
  }
  // Wake up for the earliest retry; a free request slot is what the next
  // completion brings, and it pumps again.
  uv_timer_stop(&m_retry_timer->handle);
  if (m_in_flight.size() >= m_config.max_in_flight || m_pending.empty()) return;
  std::uint64_t earliest = UINT64_MAX;
  for (const auto& job : m_pending) earliest = std::min(earliest, job->due_ms);
  uv_timer_start(&m_retry_timer->handle, &Notifier::on_retry_timer,
                 earliest > now ? earliest - now : 0, 0);
}

void Notifier::start(std::unique_ptr<Job> job) {
  ++job->attempts;
  const OutgoingNotification& message = job->message;
  http::HttpRequest request;
  request.url = message.url;
  request.headers = {"Content-Type: " + message.content_type};
  request.body = message.body;
  request.timeout_ms = m_config.request_timeout_ms;
  request.connect_timeout_ms = m_config.connect_timeout_ms;
  Job* started = job.get();
  m_in_flight.push_back(std::move(job));
  // A request that cannot be set up is answered before request() returns.
  m_http.request(std::move(request),
                 [this, started](http::HttpResponse response) { finished(started, std::move(response)); });
}

void Notifier::finished(Job* job, http::HttpResponse response) {
  auto it = std::find_if(m_in_flight.begin(), m_in_flight.end(),
                         [job](const std::unique_ptr<Job>& each) { return each.get() == job; });
  if (it == m_in_flight.end()) return;  // close() discarded it
  auto done = std::move(*it);
  m_in_flight.erase(it);
  const bool retry = finish(*done, response);
  if (m_closed) return;  // a result callback closed the notifier
  if (retry) enqueue(std::move(done));
  pump();
}

void Notifier::give_up(Job& job, std::string error) {
  ++m_stats.failed;
  job.last_error = std::move(error);
  spdlog::warn("notify: gave up on notification to {} ({}) after {} attempt(s): {}",
               job.message.target, loggable(job.message.url), job.attempts, job.last_error);
  report(job, false, job.last_error);
}

void Notifier::report(const Job& job, bool delivered, const std::string& error) {
  if (!m_on_result) return;
  DeliveryResult result;
  result.target = job.message.target;
  result.url = job.message.url;
  result.delivered = delivered;
  result.attempts = job.attempts;
  result.http_status = job.http_status;
  result.error = error;
  try {
    m_on_result(result);
  } catch (const std::exception& e) {
    spdlog::warn("notify: result callback threw: {}", e.what());
  } catch (...) {
    spdlog::warn("notify: result callback threw");
  }
}

std::uint64_t Notifier::backoff_ms(std::uint32_t attempts_made) {
  const std::uint32_t doublings = std::min<std::uint32_t>(attempts_made - 1, 32);
  const double base = std::min(static_cast<double>(m_config.initial_backoff_ms) *
                                   std::ldexp(1.0, static_cast<int>(doublings)),
                               static_cast<double>(m_config.max_backoff_ms));
  std::uniform_real_distribution<double> factor(1.0 - m_config.jitter, 1.0 + m_config.jitter);
  return static_cast<std::uint64_t>(std::llround(std::max(0.0, base * factor(m_random))));
}

bool Notifier::finish(Job& job, const http::HttpResponse& response) {
  job.http_status = response.status;
  std::string error;
  bool retryable = false;
  if (response.answered) {
    if (response.status >= 200 && response.status < 300) {
      ++m_stats.sent;
      report(job, true, "");
      return false;
    }
    error = "HTTP " + std::to_string(response.status);
    retryable = response.status == 429 || (response.status >= 500 && response.status < 600);
  } else {
    error = response.error;
    if (response.timed_out) ++m_stats.timeouts;
    retryable = !response.permanent;
  }
  if (!retryable || job.attempts >= m_config.max_attempts) {
    give_up(job, std::move(error));
    return false;
  }
  job.last_error = error;
  ++m_stats.retried;
  const std::uint64_t delay = backoff_ms(job.attempts);
  spdlog::info("notify: attempt {} of notification to {} ({}) failed: {}; retrying in {} ms",
               job.attempts, job.message.target, loggable(job.message.url), error, delay);
  job.due_ms = uv_now(m_loop) + delay;
  return true;
}

void Notifier::on_retry_timer(uv_timer_t* handle) {
  auto* box = static_cast<TimerBox*>(handle->data);
  try {
    box->owner->pump();
  } catch (const std::exception& e) {
    spdlog::warn("notify: {}", e.what());
  } catch (...) {
    spdlog::warn("notify: unknown exception in a retry timer");
  }
}

void Notifier::close() {
  if (m_closed) return;
  m_closed = true;
  m_http.close();  // cancels the requests in flight: their callbacks never run
  m_in_flight.clear();
  m_pending.clear();
  uv_timer_stop(&m_retry_timer->handle);
  close_box(m_retry_timer);
  m_retry_timer = nullptr;
}

}  // namespace tide::notify
