#include "coordinator/io/server/http_api.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>

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

// One open GET /v1/events. The loop appends events to `pending`; the HTTP
// thread sends them. With nothing to send its connection is suspended (the
// way libmicrohttpd's content readers wait without spinning) and the next
// event resumes it. Guarded by HttpApi::m_mutex.
struct HttpApi::Stream {
  HttpApi* api = nullptr;
  MHD_Connection* connection = nullptr;
  std::string pending;
  bool suspended = false;
  bool ending = false;     // stop(): send what is pending, then end
  bool overflowed = false;  // too slow a reader: the connection is closed
};

namespace {

MHD_Result queue_reply(MHD_Connection* connection, const ApiResponse& answer) {
  const bool bodiless = answer.status == MHD_HTTP_NO_CONTENT || answer.status == MHD_HTTP_NOT_MODIFIED;
  const std::string payload = bodiless ? std::string() : answer.text.empty() ? answer.body.dump() : answer.text;
  MHD_Response* response =
      MHD_create_response_from_buffer(payload.size(), const_cast<char*>(payload.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          answer.text.empty() ? "application/json" : answer.content_type.c_str());
  for (const auto& [name, value] : answer.headers) MHD_add_response_header(response, name.c_str(), value.c_str());
  const MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned int>(answer.status), response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result collect_argument(void* params, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  if (key != nullptr) (*static_cast<std::map<std::string, std::string>*>(params))[key] = value == nullptr ? "" : value;
  return MHD_YES;
}

const char* header(MHD_Connection* connection, const char* name) {
  return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

// What every console page and file is sent with: no framing by other sites,
// no sniffing, no Referer (a login link's code must not leak), and scripts,
// styles and requests only from this origin.
void add_console_headers(ApiResponse& answer) {
  answer.headers.emplace_back("Content-Security-Policy",
                              "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                              "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
  answer.headers.emplace_back("X-Content-Type-Options", "nosniff");
  answer.headers.emplace_back("Referrer-Policy", "no-referrer");
  answer.headers.emplace_back("X-Frame-Options", "DENY");
}

ApiResponse redirect(int status, std::string location) {
  ApiResponse answer;
  answer.status = status;
  answer.content_type = "text/plain; charset=utf-8";
  answer.text = "see " + location + "\n";
  answer.headers.emplace_back("Location", std::move(location));
  answer.headers.emplace_back("Cache-Control", "no-store");
  return answer;
}

std::string session_cookie(std::string_view value, bool clear) {
  std::string cookie(kConsoleCookie);
  cookie += "=";
  cookie += value;
  cookie += "; Path=/; HttpOnly; SameSite=Strict";
  if (clear) cookie += "; Max-Age=0";
  return cookie;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
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
  m_keepalive = new uv_timer_t;
  uv_timer_init(m_loop, m_keepalive);
  m_keepalive->data = this;
  if (!m_config.token.empty()) m_session_cookie = console_session_value(m_config.token);
  if (m_config.console) {
    m_console = ConsoleAssets::load(m_config.console_dir);
    if (m_console.built()) {
      spdlog::info("console: {} files from {}", m_console.size(), m_config.console_dir.string());
    } else {
      spdlog::warn("console: no console files in {}; /console/ says it is not built", m_config.console_dir.string());
    }
  }
}

HttpApi::~HttpApi() {
  stop();
  uv_close(reinterpret_cast<uv_handle_t*>(m_async),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
  uv_close(reinterpret_cast<uv_handle_t*>(m_keepalive),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
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
  if (m_config.console) {
    if (url == "/" && (method == "GET" || method == "HEAD")) return queue_reply(connection, redirect(302, "/console/"));
    if (url == "/console" || url.rfind("/console/", 0) == 0) return serve_console(connection, exchange, url, method);
  }
  const Route* chosen = nullptr;
  std::smatch match;
  const bool events = url == "/v1/events" && method == "GET";
  if (!events) {
    for (const Route& r : m_routes) {
      if (r.method == method && std::regex_match(url, match, r.pattern)) {
        chosen = &r;
        break;
      }
    }
    if (chosen == nullptr) return queue_reply(connection, api_error(404, "no such resource"));
  }
  Credential given = Credential::None;
  if (events || chosen->authenticated) {
    given = credential(connection);
    if (given == Credential::None) {
      return queue_reply(connection, api_error(401, "missing or wrong bearer token"));
    }
  }
  if (method != "GET" && method != "HEAD") {
    // Also without a token: a page on another site must not change the
    // fleet through a browser on this host.
    if (const std::string refusal = cross_site_refusal(connection, given == Credential::Cookie); !refusal.empty()) {
      return queue_reply(connection, api_error(403, refusal));
    }
  }
  if (events) return open_event_stream(connection);
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
  bool streaming = false;
  {
    std::lock_guard lock(m_mutex);
    jobs.swap(m_queue);
    streaming = !m_streams.empty() && !m_stopping;
  }
  if (streaming && !uv_is_active(reinterpret_cast<uv_handle_t*>(m_keepalive))) {
    const auto every = static_cast<std::uint64_t>(m_config.event_keepalive.count());
    uv_timer_start(
        m_keepalive,
        [](uv_timer_t* timer) {
          auto* self = static_cast<HttpApi*>(timer->data);
          if (self->event_streams() == 0) {
            uv_timer_stop(timer);  // armed again by the next stream
            return;
          }
          self->queue_to_streams(": keep-alive\n\n");
        },
        every, every);
  }
  for (const auto& job : jobs) {
    try {
      job->response = (*job->handler)(job->request);
    } catch (const std::exception& e) {
      // A handler bug must not take the coordinator down.
      spdlog::error("api: {} {} failed: {}", job->request.method, job->request.path, e.what());
      job->response = api_error(500, std::string("internal error: ") + e.what());
    }
    if (m_after_change && job->request.method != "GET" && job->response->status < 300) {
      m_after_change(job->request);
    }
    MHD_resume_connection(job->connection);
  }
}

HttpApi::Credential HttpApi::credential(MHD_Connection* connection) const {
  if (m_config.token.empty()) return Credential::Bearer;  // no authentication configured
  if (const char* given = header(connection, MHD_HTTP_HEADER_AUTHORIZATION); given != nullptr) {
    const std::string_view text(given);
    if (text.rfind("Bearer ", 0) == 0 && same_secret(text.substr(7), m_config.token)) return Credential::Bearer;
  }
  if (const char* cookies = header(connection, MHD_HTTP_HEADER_COOKIE); cookies != nullptr) {
    const auto value = cookie_value(cookies, kConsoleCookie);
    if (value && same_secret(*value, m_session_cookie)) return Credential::Cookie;
  }
  return Credential::None;
}

std::string HttpApi::cross_site_refusal(MHD_Connection* connection, bool console_header_required) {
  const char* marker = header(connection, std::string(kConsoleHeader).c_str());
  if (console_header_required && (marker == nullptr || std::strcmp(marker, "1") != 0)) {
    return "a change made with the console's cookie must carry the header " + std::string(kConsoleHeader) +
           ": 1 (refused as a possible cross-site request)";
  }
  // Browsers send Origin with every cross-origin request that changes
  // something; the console is only ever served from this host.
  const char* origin = header(connection, "Origin");
  const char* host = header(connection, MHD_HTTP_HEADER_HOST);
  if (origin != nullptr && std::strcmp(origin, "null") != 0) {
    std::string_view from(origin);
    const std::size_t scheme = from.find("://");
    if (scheme != std::string_view::npos) from.remove_prefix(scheme + 3);
    if (host == nullptr || from != host) {
      return std::string("the request comes from another origin (") + origin + ") than this console";
    }
  }
  return {};
}

int HttpApi::serve_console(MHD_Connection* connection, Exchange& exchange, const std::string& url,
                           const std::string& method) {
  const auto reply = [&](ApiResponse answer) {
    add_console_headers(answer);
    return queue_reply(connection, answer);
  };
  if (url == "/console") return reply(redirect(301, "/console/"));
  if (url == "/console/session" && method == "GET") {
    if (credential(connection) == Credential::None) return reply(api_error(401, "not logged in"));
    ApiResponse answer;
    answer.body = {{"authenticated", true}, {"auth_required", !m_config.token.empty()}, {"version", TIDE_VERSION}};
    answer.headers.emplace_back("Cache-Control", "no-store");
    return reply(std::move(answer));
  }
  if (url == "/console/login" && method == "POST") {
    // A login form posted from another site would log the browser into the
    // attacker's session: the console's header is required here too.
    if (const std::string refusal = cross_site_refusal(connection, true); !refusal.empty()) {
      return reply(api_error(403, refusal));
    }
    const auto body = nlohmann::json::parse(exchange.body, nullptr, false);
    exchange.body.clear();
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
      return reply(api_error(400, "the body must be {\"token\": \"...\"}", "token"));
    }
    const auto token = body["token"].get<std::string>();
    if (!m_config.token.empty() && !same_secret(token, m_config.token)) {
      spdlog::info("console: a login with a wrong token");
      return reply(api_error(401, "wrong token", "token"));
    }
    ApiResponse answer;
    answer.status = 204;
    answer.headers.emplace_back("Set-Cookie", session_cookie(m_session_cookie, false));
    answer.headers.emplace_back("Cache-Control", "no-store");
    return reply(std::move(answer));
  }
  if (url == "/console/login" && method == "GET") {
    // A one-time link (tidectl console url): log in and go to the console.
    const char* code = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "code");
    if (code == nullptr) return reply(redirect(303, "/console/#/login"));
    if (!m_login_codes.take(code)) {
      spdlog::info("console: a login link that is used, expired or unknown");
      return reply(redirect(303, "/console/#/login?link=expired"));
    }
    ApiResponse answer = redirect(303, "/console/");
    answer.headers.emplace_back("Set-Cookie", session_cookie(m_session_cookie, false));
    return reply(std::move(answer));
  }
  if (url == "/console/logout" && method == "POST") {
    ApiResponse answer;
    answer.status = 204;
    answer.headers.emplace_back("Set-Cookie", session_cookie("", true));
    answer.headers.emplace_back("Cache-Control", "no-store");
    return reply(std::move(answer));
  }
  if (method != "GET" && method != "HEAD") return reply(api_error(405, "the console's files are read with GET"));
  std::string relative = url.substr(std::string_view("/console/").size());
  if (relative.empty()) relative = "index.html";
  if (!m_console.built()) {
    ApiResponse answer;
    answer.status = 404;
    answer.content_type = "text/html; charset=utf-8";
    answer.text = console_not_built_page(m_config.console_dir);
    return reply(std::move(answer));
  }
  const ConsoleAsset* asset = m_console.find(relative);
  if (asset == nullptr) return reply(api_error(404, "no such console file"));
  ApiResponse answer;
  answer.content_type = asset->content_type;
  answer.headers.emplace_back("ETag", asset->etag);
  // Always revalidated (an ETag makes that a 304 without a body): a new
  // coordinator's files must not be mixed with a cached old page.
  answer.headers.emplace_back("Cache-Control", "no-cache");
  const char* cached = header(connection, MHD_HTTP_HEADER_IF_NONE_MATCH);
  if (cached != nullptr && asset->etag == cached) {
    answer.status = 304;
    return reply(std::move(answer));
  }
  answer.text = asset->body;
  return reply(std::move(answer));
}

int HttpApi::open_event_stream(MHD_Connection* connection) {
  auto* stream = new Stream;
  stream->api = this;
  stream->connection = connection;
  // The browser reconnects a second after a lost stream (a restarted
  // coordinator); hello tells it the stream is up, so it reads afresh.
  stream->pending = "retry: 1000\nevent: hello\ndata: {\"now_ms\":" + std::to_string(wall_ms()) + "}\n\n";
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) {
      delete stream;
      return queue_reply(connection, api_error(503, "the coordinator is stopping"));
    }
    if (m_streams.size() >= m_config.max_event_streams) {
      delete stream;
      return queue_reply(connection, api_error(503, "too many event streams are open (" +
                                                        std::to_string(m_config.max_event_streams) + ")"));
    }
    m_streams.push_back(stream);
  }
  // From here the response owns the stream: close_stream() ends it.
  MHD_Response* response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, &HttpApi::read_stream,
                                                             stream, &HttpApi::close_stream);
  if (response == nullptr) {
    close_stream(stream);
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(response, "X-Accel-Buffering", "no");  // proxies: do not hold events back
  const MHD_Result queued = MHD_queue_response(connection, MHD_HTTP_OK, response);
  MHD_destroy_response(response);
  uv_async_send(m_async);  // the loop arms the keep-alive
  return queued;
}

ssize_t HttpApi::read_stream(void* cls, std::uint64_t /*position*/, char* buffer, std::size_t max) {
  auto& stream = *static_cast<Stream*>(cls);
  std::lock_guard lock(stream.api->m_mutex);
  if (stream.overflowed) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (!stream.pending.empty()) {
    const std::size_t size = std::min(max, stream.pending.size());
    std::memcpy(buffer, stream.pending.data(), size);
    stream.pending.erase(0, size);
    return static_cast<ssize_t>(size);
  }
  if (stream.ending) return MHD_CONTENT_READER_END_OF_STREAM;
  // Nothing to send: park the connection until publish() resumes it.
  MHD_suspend_connection(stream.connection);
  stream.suspended = true;
  return 0;
}

void HttpApi::close_stream(void* cls) {
  auto* stream = static_cast<Stream*>(cls);
  {
    std::lock_guard lock(stream->api->m_mutex);
    auto& streams = stream->api->m_streams;
    streams.erase(std::remove(streams.begin(), streams.end(), stream), streams.end());
  }
  delete stream;
}

void HttpApi::queue_to_streams(const std::string& frame) {
  std::lock_guard lock(m_mutex);
  for (Stream* stream : m_streams) {
    if (stream->ending || stream->overflowed) continue;
    if (stream->pending.size() + frame.size() > m_config.max_event_backlog_bytes) {
      spdlog::info("api: an event stream reads too slowly ({} bytes waiting); closing it",
                   stream->pending.size());
      stream->overflowed = true;
    } else {
      stream->pending += frame;
    }
    if (stream->suspended) {
      stream->suspended = false;
      MHD_resume_connection(stream->connection);
    }
  }
}

void HttpApi::publish(std::string_view event, std::string_view data) {
  std::string frame = "event: ";
  frame += event;
  frame += "\ndata: ";
  frame += data;
  frame += "\n\n";
  queue_to_streams(frame);
}

std::size_t HttpApi::event_streams() const {
  std::lock_guard lock(m_mutex);
  return m_streams.size();
}

std::string HttpApi::issue_login_code(std::chrono::milliseconds ttl) { return m_login_codes.issue(ttl); }

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
  {
    std::lock_guard lock(m_mutex);
    for (Stream* stream : m_streams) {
      stream->ending = true;
      if (stream->suspended) {
        stream->suspended = false;
        MHD_resume_connection(stream->connection);
      }
    }
  }
  uv_timer_stop(m_keepalive);
  if (m_daemon != nullptr) {
    MHD_stop_daemon(m_daemon);
    m_daemon = nullptr;
  }
}

}  // namespace tide::coordinator
