// HttpApi: the admin API's HTTP server, whose handlers run on the
// coordinator's libuv loop thread.
//
// Connections are served by GNU libmicrohttpd on one thread of its own with
// epoll: however many connections are slow or idle (a slowloris, a stuck
// client), none of them holds a worker that another request needs. A request
// is parsed and checked there (route, bearer token, body size, JSON nesting
// and syntax), then queued to the loop (uv_async) while its connection is
// suspended; the loop runs the handler and resumes the connection with the
// answer. So every handler sees and changes state on the one thread that owns
// it, as DESIGN.md requires, and the HTTP thread never waits for the loop.
//
// The same listener serves the web console (docs/console.md): its static
// files and login on the HTTP thread (they need nothing the loop owns), and a
// stream of Server-Sent Events, GET /v1/events, that the loop publishes to.
// The console authenticates with a cookie instead of the bearer header; a
// change made with the cookie must also carry the X-Tide-Console header,
// which a cross-site page cannot send.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/io/json/nesting.hpp"
#include "coordinator/io/server/console_web.hpp"

struct MHD_Daemon;
struct MHD_Connection;

namespace tide::coordinator {

struct ApiRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;       // query string
  std::vector<std::string> path_params;            // the route's captures, in order
  std::optional<nlohmann::json> body;              // parsed JSON body, if any
};

struct ApiResponse {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::string content_type = "application/json";
  std::string text;  // sent instead of body when not empty (e.g. /metrics)
  std::vector<std::pair<std::string, std::string>> headers;  // added to the answer
};

// Helpers for handlers: {"error": message, "field": field}.
[[nodiscard]] ApiResponse api_error(int status, std::string message, std::string field = "");


struct HttpApiConfig {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  std::uint16_t port = 7401;          // 0 = pick a free port (tests)
  std::string token;                  // bearer token; empty = no authentication
  std::size_t max_body_bytes = 1 << 20;
  // A connection that sends or reads nothing for this long is closed (idle
  // keep-alive connections, stalled clients).
  std::uint32_t idle_timeout_s = 10;
  // Connections served at once; more are refused at accept (each costs one
  // descriptor and a little memory, never a thread).
  std::uint32_t max_connections = 1000;
  // The web console at /console/: served only when set; its files come from
  // `console_dir` (a page says so when they are missing).
  bool console = false;
  std::filesystem::path console_dir;
  // Event streams open at once (each holds one of max_connections).
  std::size_t max_event_streams = 256;
  // A comment is sent on every open stream this often, so that proxies and
  // browsers see a live connection.
  std::chrono::milliseconds event_keepalive{5000};
  // Events a slow stream may have waiting before it is closed (the browser
  // reconnects and reads the state afresh).
  std::size_t max_event_backlog_bytes = 1 << 20;
};

class HttpApi {
 public:
  using Handler = std::function<ApiResponse(const ApiRequest&)>;

  HttpApi(uv_loop_t* loop, HttpApiConfig config);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // `pattern` is a regular expression over the whole path, e.g.
  // R"(/v1/groups/([^/]+))". Register every route before start().
  void route(const std::string& method, const std::string& pattern, Handler handler);
  // Routes without authentication (/healthz, /metrics).
  void public_route(const std::string& method, const std::string& pattern, Handler handler);

  // Called on the loop after each request that changed something (a method
  // other than GET that was answered 2xx).
  void after_change(std::function<void(const ApiRequest&)> observer) { m_after_change = std::move(observer); }

  // Binds and starts serving; returns the bound port.
  [[nodiscard]] tl::expected<std::uint16_t, std::string> start();
  // Stops serving. Requests still queued for the loop are answered 503 and
  // event streams end. Call it on the loop thread. Idempotent.
  void stop();

  // Sends one event to every open stream of GET /v1/events (loop thread).
  // `data` is one line (compact JSON).
  void publish(std::string_view event, std::string_view data);
  [[nodiscard]] std::size_t event_streams() const;

  // A code for GET /console/login?code=..., good once within `ttl`.
  [[nodiscard]] std::string issue_login_code(std::chrono::milliseconds ttl);

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    std::shared_ptr<Handler> handler;
    bool authenticated = true;
  };
  struct Job;
  struct Exchange;
  struct Stream;
  enum class Credential { None, Bearer, Cookie };

  void add(const std::string& method, const std::string& pattern, Handler handler, bool authenticated);
  // On the HTTP thread: one request's headers, body pieces and end.
  int on_request(MHD_Connection* connection, const char* url, const char* method, const char* upload_data,
                 std::size_t* upload_data_size, void** context);
  // On the HTTP thread: the request is whole; answer it or queue it.
  int dispatch(MHD_Connection* connection, Exchange& exchange, const std::string& url, const std::string& method);
  void run_queued();  // on the loop thread
  // On the HTTP thread: what authenticates this request, if anything.
  [[nodiscard]] Credential credential(MHD_Connection* connection) const;
  // On the HTTP thread: why a change is refused as a possible cross-site
  // request (another Origin than this host; without the console's header
  // when `console_header_required`); empty when it is not.
  [[nodiscard]] static std::string cross_site_refusal(MHD_Connection* connection, bool console_header_required);
  int serve_console(MHD_Connection* connection, Exchange& exchange, const std::string& url,
                    const std::string& method);
  int open_event_stream(MHD_Connection* connection);
  // libmicrohttpd's content reader and its end, for an event stream.
  static ssize_t read_stream(void* stream, std::uint64_t position, char* buffer, std::size_t max);
  static void close_stream(void* stream);
  void queue_to_streams(const std::string& frame);

  uv_loop_t* m_loop;
  HttpApiConfig m_config;
  std::vector<Route> m_routes;
  std::function<void(const ApiRequest&)> m_after_change;
  MHD_Daemon* m_daemon = nullptr;
  uv_async_t* m_async = nullptr;
  mutable std::mutex m_mutex;  // guards m_queue, m_stopping and m_streams
  std::deque<std::shared_ptr<Job>> m_queue;
  bool m_stopping = false;
  std::vector<Stream*> m_streams;        // open event streams, owned here
  uv_timer_t* m_keepalive = nullptr;     // comments on idle streams
  ConsoleAssets m_console;
  std::string m_session_cookie;          // console_session_value(token)
  LoginCodes m_login_codes;
};

}  // namespace tide::coordinator
