// HttpClient: HTTP requests with libcurl's multi interface, driven by the
// coordinator's libuv loop.
//
// curl never blocks the loop: its sockets are watched with uv_poll_t and its
// time-outs with a uv_timer_t (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION), so a
// server that hangs or a host that does not answer costs the loop nothing
// but a few callbacks. No thread of ours is involved (curl's own threaded
// resolver looks up host names).
//
// One request, one answer: no retries, no redirects followed — the users
// (webhook delivery, Prometheus queries) decide what a failure means.
// Everything happens on the loop thread: call every member from it only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>

namespace tide::http {

struct HttpRequest {
  std::string url;                   // http:// or https://; other schemes fail at once
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;   // set: POST this body; unset: GET
  std::uint32_t timeout_ms = 5'000;  // the whole request, connect included
  std::uint32_t connect_timeout_ms = 2'000;
  // The answer's body is kept up to this many bytes; a longer one fails the
  // request ("answer larger than ..."). 0: the body is discarded.
  std::size_t max_body_bytes = 0;
};

struct HttpResponse {
  // True when an HTTP answer arrived (whatever its status); false when the
  // request failed before one did (connection, time-out, size, set-up).
  bool answered = false;
  long status = 0;     // the answer's status code; 0 when none arrived
  std::string body;    // at most max_body_bytes
  std::string error;   // why no answer arrived; empty when answered
  bool timed_out = false;  // the failure was a time-out (connect or request)
  // The failure cannot be cured by trying again: the URL or the build is
  // the problem (bad URL, unsupported scheme).
  bool permanent = false;
};

class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse)>;

  HttpClient(uv_loop_t* loop, std::string user_agent);
  ~HttpClient();  // close()
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts the request; `done` runs once, on the loop, with the answer or
  // the failure. A request that cannot even be set up (out of memory, the
  // client closed) calls `done` before request() returns. `done` may start
  // new requests or close the client.
  void request(HttpRequest request, Callback done);

  [[nodiscard]] std::size_t in_flight() const { return m_transfers.size(); }

  // Cancels the requests in flight (their callbacks never run) and closes
  // every handle; once the loop has run its close callbacks nothing of the
  // client's is left on it. Idempotent.
  void close();

 private:
  struct Transfer;
  struct SocketWatch;
  struct TimerBox;

  static int on_curl_socket(void* easy, int socket, int what, void* user, void* socket_data);
  static int on_curl_timer(void* multi, long timeout_ms, void* user);
  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_curl_timeout(uv_timer_t* handle);

  void socket_action(int socket, int flags);
  void collect_finished();
  static void fail_now(const Callback& done, std::string error);

  uv_loop_t* m_loop;
  std::string m_user_agent;
  void* m_multi = nullptr;  // CURLM*; curl.h stays out of this header
  TimerBox* m_curl_timer = nullptr;
  std::unordered_map<int, SocketWatch*> m_watches;
  std::unordered_map<void*, std::unique_ptr<Transfer>> m_transfers;  // by CURL*
  bool m_closed = false;
};

}  // namespace tide::http
