#include "coordinator/io/server/http_api.hpp"

#include <future>

#include <httplib.h>
#include <spdlog/spdlog.h>

namespace tide::coordinator {

ApiResponse api_error(int status, std::string message, std::string field) {
  ApiResponse response;
  response.status = status;
  response.body = nlohmann::json{{"error", std::move(message)}};
  if (!field.empty()) response.body["field"] = std::move(field);
  return response;
}

std::optional<std::size_t> json_nesting_over(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    if (in_string) {
      if (c == '\\') ++k;  // skip the escaped character
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return k;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

// One request waiting for the loop thread.
struct HttpApi::Job {
  ApiRequest request;
  const Handler* handler = nullptr;
  std::promise<ApiResponse> done;
};

HttpApi::HttpApi(uv_loop_t* loop, HttpApiConfig config)
    : m_loop(loop), m_config(std::move(config)), m_server(std::make_unique<httplib::Server>()) {
  m_async = new uv_async_t;
  uv_async_init(m_loop, m_async, [](uv_async_t* async) { static_cast<HttpApi*>(async->data)->run_queued(); });
  m_async->data = this;
  m_server->set_payload_max_length(m_config.max_body_bytes);
  m_server->set_read_timeout(10, 0);
  m_server->set_write_timeout(10, 0);
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

void HttpApi::add(const std::string& method, const std::string& pattern, Handler handler,
                  bool authenticated) {
  // The handler lives as long as the server; jobs point at it.
  auto owned = std::make_shared<Handler>(std::move(handler));
  auto serve = [this, owned, authenticated](const httplib::Request& req, httplib::Response& res) {
    const auto reply = [&res](const ApiResponse& response) {
      res.status = response.status;
      if (!response.text.empty()) {
        res.set_content(response.text, response.content_type);
      } else {
        res.set_content(response.body.dump(), "application/json");
      }
    };
    if (authenticated && !m_config.token.empty()) {
      const std::string expected = "Bearer " + m_config.token;
      if (req.get_header_value("Authorization") != expected) {
        reply(api_error(401, "missing or wrong bearer token"));
        return;
      }
    }
    auto job = std::make_shared<Job>();
    job->request.method = req.method;
    job->request.path = req.path;
    for (const auto& [key, value] : req.params) job->request.params[key] = value;
    for (std::size_t i = 1; i < req.matches.size(); ++i) job->request.path_params.push_back(req.matches[i]);
    if (!req.body.empty()) {
      // Every body is checked before it is parsed: the routes walk documents
      // recursively, and a deep one would exhaust the stack.
      if (auto at = json_nesting_over(req.body, kMaxJsonDepth)) {
        reply(api_error(400, "the request body nests deeper than " + std::to_string(kMaxJsonDepth) +
                                 " levels (at byte " + std::to_string(*at) + ")"));
        return;
      }
      auto body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded()) {
        reply(api_error(400, "the request body is not valid JSON"));
        return;
      }
      job->request.body = std::move(body);
    }
    job->handler = owned.get();
    auto answer = job->done.get_future();
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping) {
        reply(api_error(503, "the coordinator is stopping"));
        return;
      }
      m_queue.push_back(job);
    }
    uv_async_send(m_async);
    if (answer.wait_for(m_config.handler_timeout) != std::future_status::ready) {
      reply(api_error(503, "the coordinator did not answer in time"));
      return;
    }
    reply(answer.get());
  };
  if (method == "GET") m_server->Get(pattern, serve);
  else if (method == "POST") m_server->Post(pattern, serve);
  else if (method == "PUT") m_server->Put(pattern, serve);
  else if (method == "PATCH") m_server->Patch(pattern, serve);
  else if (method == "DELETE") m_server->Delete(pattern, serve);
}

void HttpApi::run_queued() {
  std::deque<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(m_mutex);
    jobs.swap(m_queue);
  }
  for (const auto& job : jobs) {
    try {
      job->done.set_value((*job->handler)(job->request));
    } catch (const std::exception& e) {
      // A handler bug must not take the coordinator down.
      spdlog::error("api: {} {} failed: {}", job->request.method, job->request.path, e.what());
      job->done.set_value(api_error(500, std::string("internal error: ") + e.what()));
    }
  }
}

tl::expected<std::uint16_t, std::string> HttpApi::start() {
  m_server->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(nlohmann::json{{"error", res.status == 404 ? "no such resource" : "request failed"}}.dump(),
                      "application/json");
    }
  });
  int port = m_config.port;
  if (port == 0) {
    port = m_server->bind_to_any_port(m_config.address);
    if (port <= 0) return tl::make_unexpected("cannot bind the API to " + m_config.address);
  } else if (!m_server->bind_to_port(m_config.address, port)) {
    return tl::make_unexpected("cannot bind the API to " + m_config.address + ":" + std::to_string(port));
  }
  m_thread = std::thread([this] { m_server->listen_after_bind(); });
  return static_cast<std::uint16_t>(port);
}

void HttpApi::stop() {
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) return;
    m_stopping = true;
    for (const auto& job : m_queue) job->done.set_value(api_error(503, "the coordinator is stopping"));
    m_queue.clear();
  }
  m_server->stop();
  if (m_thread.joinable()) m_thread.join();
}

}  // namespace tide::coordinator
