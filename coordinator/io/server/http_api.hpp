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
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/io/json/nesting.hpp"

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

  // Binds and starts serving; returns the bound port.
  [[nodiscard]] tl::expected<std::uint16_t, std::string> start();
  // Stops serving. Requests still queued for the loop are answered 503.
  // Call it on the loop thread. Idempotent.
  void stop();

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    std::shared_ptr<Handler> handler;
    bool authenticated = true;
  };
  struct Job;
  struct Exchange;

  void add(const std::string& method, const std::string& pattern, Handler handler, bool authenticated);
  // On the HTTP thread: one request's headers, body pieces and end.
  int on_request(MHD_Connection* connection, const char* url, const char* method, const char* upload_data,
                 std::size_t* upload_data_size, void** context);
  // On the HTTP thread: the request is whole; answer it or queue it.
  int dispatch(MHD_Connection* connection, Exchange& exchange, const std::string& url, const std::string& method);
  void run_queued();  // on the loop thread

  uv_loop_t* m_loop;
  HttpApiConfig m_config;
  std::vector<Route> m_routes;
  MHD_Daemon* m_daemon = nullptr;
  uv_async_t* m_async = nullptr;
  std::mutex m_mutex;  // guards m_queue and m_stopping
  std::deque<std::shared_ptr<Job>> m_queue;
  bool m_stopping = false;
};

}  // namespace tide::coordinator
