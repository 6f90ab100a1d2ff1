#include "coordinator/io/server/http_api.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdarg>
#include <cstdio>

#include <spdlog/spdlog.h>

namespace tide::coordinator {

ApiResponse api_error(int status, std::string message, std::string field) {
  ApiResponse response;
  response.status = status;
  response.body = nlohmann::json{{"error", std::move(message)}};
  if (!field.empty()) response.body["field"] = std::move(field);
  return response;
}

// One request waiting for the loop thread; its connection is suspended until
// the loop (or stop()) sets the response and resumes it.
struct HttpApi::Job {
  ApiRequest request;
  const Handler* handler = nullptr;
  MHD_Connection* connection = nullptr;
  std::optional<ApiResponse> response;
};

// What the HTTP thread keeps for one request on a connection (libmicrohttpd's
// per-request context), from its headers to its completion.
struct HttpApi::Exchange {
  std::string body;
  bool too_large = false;
  std::shared_ptr<Job> job;  // queued to the loop
};

namespace {

MHD_Result queue_reply(MHD_Connection* connection, const ApiResponse& answer) {
  const std::string payload = answer.text.empty() ? answer.body.dump() : answer.text;
  MHD_Response* response =
      MHD_create_response_from_buffer(payload.size(), const_cast<char*>(payload.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          answer.text.empty() ? "application/json" : answer.content_type.c_str());
  const MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned int>(answer.status), response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result collect_argument(void* params, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  if (key != nullptr) (*static_cast<std::map<std::string, std::string>*>(params))[key] = value == nullptr ? "" : value;
  return MHD_YES;
}

void log_mhd(void* /*cls*/, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::debug("api: {}", text);
}

}  // namespace

HttpApi::HttpApi(uv_loop_t* loop, HttpApiConfig config) : m_loop(loop), m_config(std::move(config)) {
  m_async = new uv_async_t;
  uv_async_init(m_loop, m_async, [](uv_async_t* async) { static_cast<HttpApi*>(async->data)->run_queued(); });
  m_async->data = this;
}

HttpApi::~HttpApi() {
  stop();
  uv_close(reinterpret_cast<uv_handle_t*>(m_async),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
}

void HttpApi::route(const std::string& method, const std::string& pattern, Handler handler) {
  add(method, pattern, std::move(handler), true);
}

void HttpApi::public_route(const std::string& method, const std::string& pattern, Handler handler) {
  add(method, pattern, std::move(handler), false);
}

void HttpApi::add(const std::string& method, const std::string& pattern, Handler handler, bool authenticated) {
  m_routes.push_back(Route{method, std::regex(pattern), std::make_shared<Handler>(std::move(handler)), authenticated});
}

int HttpApi::on_request(MHD_Connection* connection, const char* url, const char* method, const char* upload_data,
                        std::size_t* upload_data_size, void** context) {
  if (*context == nullptr) {
    // The headers are in. A declared body over the limit is refused now,
    // before a byte of it is read (the connection is then closed).
    auto* exchange = new Exchange;
    *context = exchange;
    const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != nullptr) {
      std::uint64_t declared = 0;
      const std::string_view text(length);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), declared);
      if (error != std::errc() || end != text.data() + text.size()) {
        return queue_reply(connection, api_error(400, "Content-Length is not a number of bytes"));
      }
      if (declared > m_config.max_body_bytes) {
        return queue_reply(connection, api_error(413, "the request body is larger than " +
                                                          std::to_string(m_config.max_body_bytes) + " bytes"));
      }
    }
    return MHD_YES;
  }
  auto& exchange = *static_cast<Exchange*>(*context);
  if (*upload_data_size != 0) {
    // A piece of the body. A chunked body that grows past the limit cannot be
    // answered in the middle of its upload: the connection is closed.
    if (exchange.body.size() + *upload_data_size > m_config.max_body_bytes) {
      spdlog::info("api: {} {}: the chunked request body exceeds {} bytes; closing the connection", method, url,
                   m_config.max_body_bytes);
      return MHD_NO;
    }
    exchange.body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (exchange.job) return queue_reply(connection, *exchange.job->response);  // resumed with the loop's answer
  return dispatch(connection, exchange, url, method);
}

int HttpApi::dispatch(MHD_Connection* connection, Exchange& exchange, const std::string& url,
                      const std::string& method) {
  const Route* chosen = nullptr;
  std::smatch match;
  for (const Route& r : m_routes) {
    if (r.method == method && std::regex_match(url, match, r.pattern)) {
      chosen = &r;
      break;
    }
  }
  if (chosen == nullptr) return queue_reply(connection, api_error(404, "no such resource"));
  if (chosen->authenticated && !m_config.token.empty()) {
    const char* given = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (given == nullptr || given != "Bearer " + m_config.token) {
      return queue_reply(connection, api_error(401, "missing or wrong bearer token"));
    }
  }
  auto job = std::make_shared<Job>();
  job->request.method = method;
  job->request.path = url;
  for (std::size_t i = 1; i < match.size(); ++i) job->request.path_params.push_back(match[i]);
  MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &collect_argument, &job->request.params);
  if (!exchange.body.empty()) {
    // Every body is checked before it is parsed: the routes walk documents
    // recursively, and a deep one would exhaust the stack.
    if (auto at = json_nesting_over(exchange.body, kMaxJsonDepth)) {
      return queue_reply(connection, api_error(400, "the request body nests deeper than " +
                                                        std::to_string(kMaxJsonDepth) + " levels (at byte " +
                                                        std::to_string(*at) + ")"));
    }
    auto body = nlohmann::json::parse(exchange.body, nullptr, false);
    if (body.is_discarded()) return queue_reply(connection, api_error(400, "the request body is not valid JSON"));
    job->request.body = std::move(body);
    exchange.body.clear();
  }
  job->handler = chosen->handler.get();
  job->connection = connection;
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) return queue_reply(connection, api_error(503, "the coordinator is stopping"));
    // Suspended before the loop can see the job: the loop only resumes
    // connections it took from the queue.
    MHD_suspend_connection(connection);
    exchange.job = job;
    m_queue.push_back(std::move(job));
  }
  uv_async_send(m_async);
  return MHD_YES;
}

void HttpApi::run_queued() {
  std::deque<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(m_mutex);
    jobs.swap(m_queue);
  }
  for (const auto& job : jobs) {
    try {
      job->response = (*job->handler)(job->request);
    } catch (const std::exception& e) {
      // A handler bug must not take the coordinator down.
      spdlog::error("api: {} {} failed: {}", job->request.method, job->request.path, e.what());
      job->response = api_error(500, std::string("internal error: ") + e.what());
    }
    MHD_resume_connection(job->connection);
  }
}

tl::expected<std::uint16_t, std::string> HttpApi::start() {
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* address = nullptr;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (::inet_pton(AF_INET, m_config.address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(m_config.port);
    address = reinterpret_cast<const sockaddr*>(&v4);
  } else if (::inet_pton(AF_INET6, m_config.address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(m_config.port);
    address = reinterpret_cast<const sockaddr*>(&v6);
    flags |= MHD_USE_IPv6;
  } else {
    return tl::make_unexpected("api.listen_address " + m_config.address + " is not an IPv4 or IPv6 address");
  }
  auto on_request = [](void* self, MHD_Connection* connection, const char* url, const char* method,
                       const char* /*version*/, const char* upload_data, std::size_t* upload_data_size,
                       void** context) -> MHD_Result {
    return static_cast<HttpApi*>(self)->on_request(connection, url, method, upload_data, upload_data_size,
                                                   context) == MHD_YES
               ? MHD_YES
               : MHD_NO;
  };
  auto on_completed = [](void* /*self*/, MHD_Connection* /*connection*/, void** context,
                         MHD_RequestTerminationCode /*why*/) {
    delete static_cast<Exchange*>(*context);
    *context = nullptr;
  };
  m_daemon = MHD_start_daemon(
      flags, m_config.port, nullptr, nullptr, on_request, this, MHD_OPTION_SOCK_ADDR, address,
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(m_config.idle_timeout_s),
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(m_config.max_connections),
      MHD_OPTION_NOTIFY_COMPLETED, static_cast<MHD_RequestCompletedCallback>(on_completed), this,
      MHD_OPTION_EXTERNAL_LOGGER, &log_mhd, this, MHD_OPTION_END);
  if (m_daemon == nullptr) {
    return tl::make_unexpected("cannot bind the API to " + m_config.address + ":" + std::to_string(m_config.port));
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(m_daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info != nullptr ? info->port : m_config.port;
}

void HttpApi::stop() {
  std::deque<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) return;
    m_stopping = true;
    jobs.swap(m_queue);
  }
  // libmicrohttpd stops only with every suspended connection resumed.
  for (const auto& job : jobs) {
    job->response = api_error(503, "the coordinator is stopping");
    MHD_resume_connection(job->connection);
  }
  if (m_daemon != nullptr) {
    MHD_stop_daemon(m_daemon);
    m_daemon = nullptr;
  }
}

}  // namespace tide::coordinator
