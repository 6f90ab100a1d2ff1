// A real tide-coordinator Server for API tests: its own libuv loop on a
// background thread, a temporary state directory, the local provider, no
// load balancer, the admin API on 127.0.0.1 with the port read back. The
// test thread talks HTTP to it like tidectl does. Every wait is bounded.
// Instances the local provider launched outlive the server by design (they
// survive coordinator restarts): the fixture's Reaper kills them when the
// fixture goes, and when the test process dies without getting there.
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <uv.h>

#include "coordinator/io/server/server.hpp"
#include "tests/support/reaper.hpp"

namespace tide::coordinator::test {

struct HttpResult {
  int status = 0;
  nlohmann::json body;
};

// A shell command's exit status and its stdout and stderr together (tidectl).
struct Run {
  int exit_code = -1;
  std::string output;
};

inline Run run(const std::string& command) {
  Run result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) result.output += buffer.data();
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class ServerFixture {
 public:
  // `before_start` may seed the store (the state directory exists by then).
  explicit ServerFixture(const std::function<void(const std::filesystem::path&)>& before_start = {}) {
    char pattern[] = "/tmp/tide-api-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    m_dir = made;
    m_reaper.emplace(m_dir);
    if (before_start) before_start(m_dir);
    CoordinatorConfig config;
    config.state_dir = m_dir;
    config.api.listen_port = 0;
    config.agents.listen = "tcp://127.0.0.1:*";
    config.agents.curve = false;
    config.load_balancer.type = "none";
    config.provider.type = "local";
    std::promise<std::string> started;
    auto ready = started.get_future();
    m_thread = std::thread([this, config, &started]() mutable {
      uv_loop_init(&m_loop);
      uv_async_init(&m_loop, &m_async, [](uv_async_t* async) {
        auto* self = static_cast<ServerFixture*>(async->data);
        self->m_server->stop([self] { uv_stop(&self->m_loop); });
      });
      m_async.data = this;
      m_server = std::make_unique<Server>(&m_loop, config, std::filesystem::path(TIDE_BIN_DIR));
      m_server->start([&started](tl::expected<void, std::string> result) {
        started.set_value(result ? std::string() : result.error());
      });
      uv_run(&m_loop, UV_RUN_DEFAULT);
      m_server.reset();
      uv_close(reinterpret_cast<uv_handle_t*>(&m_async), nullptr);
      // Let closed handles finish; bounded so a stray handle cannot hang the test.
      for (int i = 0; i < 100 && uv_run(&m_loop, UV_RUN_NOWAIT) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      (void)uv_loop_close(&m_loop);
    });
    if (ready.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      throw std::runtime_error("the server did not start within 20 s");
    }
    m_start_error = ready.get();
    if (m_start_error.empty()) m_port = m_server->api_port();
  }

  ~ServerFixture() {
    uv_async_send(&m_async);
    m_thread.join();
    m_reaper->finish();  // the instances the server launched
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }

  ServerFixture(const ServerFixture&) = delete;
  ServerFixture& operator=(const ServerFixture&) = delete;

  [[nodiscard]] const std::string& start_error() const { return m_start_error; }
  [[nodiscard]] std::uint16_t port() const { return m_port; }
  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_port); }
  [[nodiscard]] const std::filesystem::path& dir() const { return m_dir; }

  HttpResult call(const std::string& method, const std::string& path,
                  const std::optional<nlohmann::json>& body = std::nullopt) {
    httplib::Client client("127.0.0.1", m_port);
    client.set_read_timeout(10, 0);
    const std::string payload = body ? body->dump() : std::string();
    httplib::Result result = method == "GET"      ? client.Get(path.c_str())
                             : method == "POST"   ? client.Post(path.c_str(), payload, "application/json")
                             : method == "PUT"    ? client.Put(path.c_str(), payload, "application/json")
                             : method == "PATCH"  ? client.Patch(path.c_str(), payload, "application/json")
                                                  : client.Delete(path.c_str());
    HttpResult out;
    if (!result) return out;
    out.status = result->status;
    out.body = nlohmann::json::parse(result->body, nullptr, false);
    return out;
  }

 private:
  std::filesystem::path m_dir;
  std::optional<test_support::Reaper> m_reaper;  // watches m_dir
  uv_loop_t m_loop{};
  uv_async_t m_async{};
  std::unique_ptr<Server> m_server;
  std::thread m_thread;
  std::string m_start_error;
  std::uint16_t m_port = 0;
};

}  // namespace tide::coordinator::test
