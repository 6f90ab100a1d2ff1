#include "coordinator/io/http/http_client.hpp"

#include <array>
#include <exception>
#include <mutex>
#include <utility>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

namespace tide::http {
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

// Errors that no retry can cure: the URL or the build is the problem.
bool permanent(CURLcode code) {
  return code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT ||
         code == CURLE_NOT_BUILT_IN || code == CURLE_BAD_FUNCTION_ARGUMENT;
}

template <class Box>
void close_box(Box* box) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&box->handle);
  if (uv_is_closing(handle) != 0) return;
  handle->data = box;
  uv_close(handle, [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
}

// Runs a callback from a libuv callback: nothing may escape into C.
template <class F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::warn("http: {}: {}", what, e.what());
  } catch (...) {
    spdlog::warn("http: {}: unknown exception", what);
  }
}

}  // namespace

struct HttpClient::Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  Callback done;
  std::string body;
  bool too_large = false;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};

  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }

  static std::size_t write(char* data, std::size_t size, std::size_t count, void* user) {
    auto* self = static_cast<Transfer*>(user);
    const std::size_t bytes = size * count;
    if (self->request.max_body_bytes == 0) return bytes;
    if (self->body.size() + bytes > self->request.max_body_bytes) {
      self->too_large = true;
      return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
    }
    self->body.append(data, bytes);
    return bytes;
  }
};

struct HttpClient::SocketWatch {
  uv_poll_t handle{};
  HttpClient* owner = nullptr;
  int socket = -1;
};

struct HttpClient::TimerBox {
  uv_timer_t handle{};
  HttpClient* owner = nullptr;
};

HttpClient::HttpClient(uv_loop_t* loop, std::string user_agent) : m_loop(loop), m_user_agent(std::move(user_agent)) {
  m_curl_timer = new TimerBox{};
  m_curl_timer->owner = this;
  uv_timer_init(m_loop, &m_curl_timer->handle);
  m_curl_timer->handle.data = m_curl_timer;

  init_curl_once();
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) {
    spdlog::warn("http: curl_multi_init failed; every request will fail");
    return;
  }
  m_multi = multi;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &HttpClient::on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &HttpClient::on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
}

HttpClient::~HttpClient() {
  close();
}

void HttpClient::fail_now(const Callback& done, std::string error) {
  HttpResponse response;
  response.error = std::move(error);
  response.permanent = true;
  done(std::move(response));
}

void HttpClient::request(HttpRequest request, Callback done) {
  if (m_closed) return fail_now(done, "the HTTP client is closed");
  if (m_multi == nullptr) return fail_now(done, "libcurl multi handle unavailable");
  auto transfer = std::make_unique<Transfer>();
  transfer->request = std::move(request);
  transfer->done = std::move(done);
  CURL* easy = curl_easy_init();
  if (easy == nullptr) return fail_now(transfer->done, "curl_easy_init failed");
  transfer->easy = easy;

  const HttpRequest& r = transfer->request;
  bool ok = true;
  for (const std::string& header : r.headers) {
    curl_slist* appended = curl_slist_append(transfer->headers, header.c_str());
    ok = ok && appended != nullptr;
    if (appended != nullptr) transfer->headers = appended;
  }
  if (r.body) {
    // Without this curl waits up to a second for "100 Continue" before
    // sending a body over 1 KiB.
    curl_slist* appended = curl_slist_append(transfer->headers, "Expect:");
    ok = ok && appended != nullptr;
    if (appended != nullptr) transfer->headers = appended;
  }
  ok = ok && curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  if (r.body) {
    ok = ok && curl_easy_setopt(easy, CURLOPT_POST, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body->data()) == CURLE_OK;
    ok = ok && curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body->size())) ==
                   CURLE_OK;
  }
  ok = ok && curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout_ms)) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout_ms)) == CURLE_OK;
  // No SIGALRM-based time-outs in a daemon: signals would hit the loop.
  ok = ok && curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_USERAGENT, m_user_agent.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::write) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get()) == CURLE_OK;
  ok = ok && curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error_buffer.data()) == CURLE_OK;
  if (!ok) return fail_now(transfer->done, "cannot set up the request (out of memory?)");

  const CURLMcode added = curl_multi_add_handle(multi_of(m_multi), easy);
  if (added != CURLM_OK) {
    return fail_now(transfer->done, std::string("curl_multi_add_handle: ") + curl_multi_strerror(added));
  }
  m_transfers.emplace(easy, std::move(transfer));
}

void HttpClient::collect_finished() {
  int left = 0;
  while (!m_closed) {
    CURLMsg* info = curl_multi_info_read(multi_of(m_multi), &left);
    if (info == nullptr) break;
    if (info->msg != CURLMSG_DONE) continue;
    CURL* easy = info->easy_handle;
    const CURLcode code = info->data.result;
    curl_multi_remove_handle(multi_of(m_multi), easy);
    auto it = m_transfers.find(easy);
    if (it == m_transfers.end()) {
      curl_easy_cleanup(easy);  // not ours: cannot happen, but never leak
      continue;
    }
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    m_transfers.erase(it);

    HttpResponse response;
    if (code == CURLE_OK) {
      response.answered = true;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      response.body = std::move(transfer->body);
    } else if (transfer->too_large) {
      response.error = "answer larger than " + std::to_string(transfer->request.max_body_bytes) + " bytes";
    } else {
      response.error = transfer->error_buffer[0] != '\0' ? std::string(transfer->error_buffer.data())
                                                         : curl_easy_strerror(code);
      response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
      response.permanent = permanent(code);
    }
    // The callback may close the client; the transfer is already ours alone.
    transfer->done(std::move(response));
  }
}

void HttpClient::socket_action(int socket, int flags) {
  if (m_closed || m_multi == nullptr) return;
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_of(m_multi), socket, flags, &running);
  if (rc != CURLM_OK) spdlog::warn("http: curl_multi_socket_action: {}", curl_multi_strerror(rc));
  collect_finished();
}

int HttpClient::on_curl_socket(void*, int socket, int what, void* user, void* socket_data) {
  auto* self = static_cast<HttpClient*>(user);
  auto* watch = static_cast<SocketWatch*>(socket_data);
  try {
    if (what == CURL_POLL_REMOVE) {
      if (watch != nullptr) {
        self->m_watches.erase(socket);
        uv_poll_stop(&watch->handle);
        close_box(watch);
        if (!self->m_closed && self->m_multi != nullptr) curl_multi_assign(multi_of(self->m_multi), socket, nullptr);
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
        spdlog::warn("http: uv_poll_init_socket({}): {}", socket, uv_strerror(rc));
        return -1;  // curl fails the transfer, which its callback then reports
      }
      watch->handle.data = watch;
      self->m_watches[socket] = watch;
      curl_multi_assign(multi_of(self->m_multi), socket, watch);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    const int rc = uv_poll_start(&watch->handle, events, &HttpClient::on_poll);
    if (rc != 0) {
      spdlog::warn("http: uv_poll_start({}): {}", socket, uv_strerror(rc));
      return -1;
    }
    return 0;
  } catch (...) {
    return -1;
  }
}

int HttpClient::on_curl_timer(void*, long timeout_ms, void* user) {
  auto* self = static_cast<HttpClient*>(user);
  if (self->m_closed) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&self->m_curl_timer->handle);
    return 0;
  }
  // curl asks to be called back; never from inside this callback, so even a
  // zero time-out goes through the loop.
  const int rc = uv_timer_start(&self->m_curl_timer->handle, &HttpClient::on_curl_timeout,
                                static_cast<std::uint64_t>(timeout_ms), 0);
  return rc == 0 ? 0 : -1;
}

void HttpClient::on_poll(uv_poll_t* handle, int status, int events) {
  auto* watch = static_cast<SocketWatch*>(handle->data);
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
  }
  guarded("socket callback", [&] { watch->owner->socket_action(watch->socket, flags); });
}

void HttpClient::on_curl_timeout(uv_timer_t* handle) {
  auto* box = static_cast<TimerBox*>(handle->data);
  guarded("timer callback", [&] { box->owner->socket_action(CURL_SOCKET_TIMEOUT, 0); });
}

void HttpClient::close() {
  if (m_closed) return;
  m_closed = true;
  if (m_multi != nullptr) {
    for (auto& [easy, transfer] : m_transfers) curl_multi_remove_handle(multi_of(m_multi), transfer->easy);
  }
  m_transfers.clear();
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
  close_box(m_curl_timer);
  m_curl_timer = nullptr;
}

}  // namespace tide::http
