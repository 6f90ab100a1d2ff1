#include "coordinator/io/notify/notifier.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <mutex>
#include <utility>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

namespace tide::notify {
namespace {

void init_curl_once() {
  // curl_global_init is not thread-safe against other curl users starting
  // up; doing it once, before the first handle, is what libcurl asks for.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CURLM* multi_of(void* multi) {
  return static_cast<CURLM*>(multi);
}

// WeCom robot URLs carry their secret in the query (?key=...): logs show the
// URL without it.
std::string loggable(const std::string& url) {
  const auto query = url.find('?');
  return query == std::string::npos ? url : url.substr(0, query) + "?...";
}

// Errors that no retry can cure: the URL or the build is the problem.
bool permanent(CURLcode code) {
  return code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT ||
         code == CURLE_NOT_BUILT_IN || code == CURLE_BAD_FUNCTION_ARGUMENT;
}

std::size_t discard_body(char*, std::size_t size, std::size_t count, void*) {
  return size * count;
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
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
};

struct Notifier::SocketWatch {
  uv_poll_t handle{};
  Notifier* owner = nullptr;
  int socket = -1;
};

struct Notifier::TimerBox {
  uv_timer_t handle{};
  Notifier* owner = nullptr;
};

Notifier::Notifier(uv_loop_t* loop, NotifierConfig config, std::uint64_t seed)
    : m_loop(loop), m_config(std::move(config)), m_random(seed) {
  m_config.max_attempts = std::max<std::uint32_t>(m_config.max_attempts, 1);
  m_config.max_in_flight = std::max<std::size_t>(m_config.max_in_flight, 1);
  m_config.max_pending = std::max<std::size_t>(m_config.max_pending, 1);
  m_config.jitter = std::clamp(m_config.jitter, 0.0, 1.0);

  m_curl_timer = new TimerBox{};
  m_curl_timer->owner = this;
  uv_timer_init(m_loop, &m_curl_timer->handle);
  m_curl_timer->handle.data = m_curl_timer;
  m_retry_timer = new TimerBox{};
  m_retry_timer->owner = this;
  uv_timer_init(m_loop, &m_retry_timer->handle);
  m_retry_timer->handle.data = m_retry_timer;

  init_curl_once();
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) {
    spdlog::warn("notify: curl_multi_init failed; notifications will be counted as failed");
    return;
  }
  m_multi = multi;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Notifier::on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Notifier::on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
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
  job->error_buffer[0] = '\0';
  if (m_multi == nullptr) {
    give_up(*job, "libcurl multi handle unavailable");
    return;
  }
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    give_up(*job, "curl_easy_init failed");
    return;
  }
  job->easy = easy;
  const std::string content_type = "Content-Type: " + job->message.content_type;
  job->headers = curl_slist_append(nullptr, content_type.c_str());
  // Without this curl waits up to a second for "100 Continue" before
  // sending a body over 1 KiB.
  job->headers = curl_slist_append(job->headers, "Expect:");

  const OutgoingNotification& message = job->message;
  bool ok = job->headers != nullptr;
  ok = ok && curl_easy_setopt(easy, CURLOPT_URL, message.url.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_POST, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_POSTFIELDS, message.body.data()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                              static_cast<curl_off_t>(message.body.size())) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->headers) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                              static_cast<long>(m_config.request_timeout_ms)) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                              static_cast<long>(m_config.connect_timeout_ms)) == CURLE_OK;
  // No SIGALRM-based time-outs in a daemon: signals would hit the loop.
  ok = ok && curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_USERAGENT, m_config.user_agent.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard_body) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job->error_buffer.data()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_PRIVATE, job.get()) == CURLE_OK;
  if (!ok) {
    release(*job);
    give_up(*job, "cannot set up the request (out of memory?)");
    return;
  }
  Job& started = *job;
  m_in_flight.push_back(std::move(job));
  const CURLMcode added = curl_multi_add_handle(multi_of(m_multi), easy);
  if (added != CURLM_OK) {
    auto it = std::find_if(m_in_flight.begin(), m_in_flight.end(),
                           [&](const std::unique_ptr<Job>& j) { return j.get() == &started; });
    auto failed = std::move(*it);
    m_in_flight.erase(it);
    release(*failed);
    give_up(*failed, std::string("curl_multi_add_handle: ") + curl_multi_strerror(added));
  }
}

void Notifier::release(Job& job) {
  if (job.easy != nullptr) curl_easy_cleanup(job.easy);
  job.easy = nullptr;
  curl_slist_free_all(job.headers);
  job.headers = nullptr;
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

bool Notifier::finish(Job& job, int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  long status = 0;
  curl_easy_getinfo(job.easy, CURLINFO_RESPONSE_CODE, &status);
  job.http_status = status;
  std::string error;
  bool retryable = false;
  if (code == CURLE_OK) {
    if (status >= 200 && status < 300) {
      ++m_stats.sent;
      report(job, true, "");
      return false;
    }
    error = "HTTP " + std::to_string(status);
    retryable = status == 429 || (status >= 500 && status < 600);
  } else {
    error = job.error_buffer[0] != '\0' ? std::string(job.error_buffer.data())
                                        : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) ++m_stats.timeouts;
    retryable = !permanent(code);
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

void Notifier::collect_finished() {
  int left = 0;
  while (!m_closed) {
    CURLMsg* info = curl_multi_info_read(multi_of(m_multi), &left);
    if (info == nullptr) break;
    if (info->msg != CURLMSG_DONE) continue;
    CURL* easy = info->easy_handle;
    const CURLcode result = info->data.result;
    auto it = std::find_if(m_in_flight.begin(), m_in_flight.end(),
                           [easy](const std::unique_ptr<Job>& job) { return job->easy == easy; });
    curl_multi_remove_handle(multi_of(m_multi), easy);
    if (it == m_in_flight.end()) {
      curl_easy_cleanup(easy);  // not ours: cannot happen, but never leak
      continue;
    }
    auto job = std::move(*it);
    m_in_flight.erase(it);
    const bool retry = finish(*job, static_cast<int>(result));
    release(*job);
    if (m_closed) return;  // a result callback closed the notifier
    if (retry) enqueue(std::move(job));
  }
}

void Notifier::socket_action(int socket, int flags) {
  if (m_closed || m_multi == nullptr) return;
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_of(m_multi), socket, flags, &running);
  if (rc != CURLM_OK) spdlog::warn("notify: curl_multi_socket_action: {}", curl_multi_strerror(rc));
  collect_finished();
  pump();
}

int Notifier::on_curl_socket(void*, int socket, int what, void* user, void* socket_data) {
  auto* self = static_cast<Notifier*>(user);
  auto* watch = static_cast<SocketWatch*>(socket_data);
  try {
    if (what == CURL_POLL_REMOVE) {
      if (watch != nullptr) {
        self->m_watches.erase(socket);
        uv_poll_stop(&watch->handle);
        close_box(watch);
        if (!self->m_closed && self->m_multi != nullptr)
          curl_multi_assign(multi_of(self->m_multi), socket, nullptr);
      }
      return 0;
    }
    if (watch == nullptr) {
      watch = new SocketWatch{};
      watch->owner = self;
      watch->socket = socket;
      const int rc = uv_poll_init_socket(self->m_loop, &watch->handle, socket);
      if (rc != 0) {
        delete watch;
        spdlog::warn("notify: uv_poll_init_socket({}): {}", socket, uv_strerror(rc));
        return -1;  // curl fails the transfer, which is then counted
      }
      watch->handle.data = watch;
      self->m_watches[socket] = watch;
      curl_multi_assign(multi_of(self->m_multi), socket, watch);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    const int rc = uv_poll_start(&watch->handle, events, &Notifier::on_poll);
    if (rc != 0) {
      spdlog::warn("notify: uv_poll_start({}): {}", socket, uv_strerror(rc));
      return -1;
    }
    return 0;
  } catch (...) {
    return -1;
  }
}

int Notifier::on_curl_timer(void*, long timeout_ms, void* user) {
  auto* self = static_cast<Notifier*>(user);
  if (self->m_closed) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&self->m_curl_timer->handle);
    return 0;
  }
  // curl asks to be called back; never from inside this callback, so even a
  // zero time-out goes through the loop.
  const int rc = uv_timer_start(&self->m_curl_timer->handle, &Notifier::on_curl_timeout,
                                static_cast<std::uint64_t>(timeout_ms), 0);
  return rc == 0 ? 0 : -1;
}

void Notifier::on_poll(uv_poll_t* handle, int status, int events) {
  auto* watch = static_cast<SocketWatch*>(handle->data);
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
  }
  try {
    watch->owner->socket_action(watch->socket, flags);
  } catch (const std::exception& e) {
    spdlog::warn("notify: {}", e.what());
  } catch (...) {
    spdlog::warn("notify: unknown exception in a socket callback");
  }
}

void Notifier::on_curl_timeout(uv_timer_t* handle) {
  auto* box = static_cast<TimerBox*>(handle->data);
  try {
    box->owner->socket_action(CURL_SOCKET_TIMEOUT, 0);
  } catch (const std::exception& e) {
    spdlog::warn("notify: {}", e.what());
  } catch (...) {
    spdlog::warn("notify: unknown exception in a timer callback");
  }
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
  if (m_multi != nullptr) {
    for (auto& job : m_in_flight) {
      curl_multi_remove_handle(multi_of(m_multi), job->easy);
      release(*job);
    }
  }
  m_in_flight.clear();
  m_pending.clear();
  if (m_multi != nullptr) {
    curl_multi_cleanup(multi_of(m_multi));
    m_multi = nullptr;
  }
  // Sockets curl did not report removed (it closed them in cleanup) still
  // have a watch each.
  for (auto& [socket, watch] : m_watches) {
    uv_poll_stop(&watch->handle);
    close_box(watch);
  }
  m_watches.clear();
  uv_timer_stop(&m_curl_timer->handle);
  uv_timer_stop(&m_retry_timer->handle);
  close_box(m_curl_timer);
  close_box(m_retry_timer);
  m_curl_timer = nullptr;
  m_retry_timer = nullptr;
}

}  // namespace tide::notify
