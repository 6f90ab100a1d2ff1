// Test harness for the agent's integration tests: a test coordinator (a real
// ROUTER with CURVE and a ZAP handler on tcp://127.0.0.1, port read back)
// and real child processes (tide-agent, tide-sample-app) on one libuv loop.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "protocol/codec.hpp"
#include "protocol/transport/curve.hpp"
#include "protocol/transport/router.hpp"
#include "protocol/transport/zap_handler.hpp"

namespace tide::test {

std::uint64_t wall_ms();

// Runs the loop until pred() holds or timeout_ms passes; returns pred().
bool run_until(uv_loop_t* loop, const std::function<bool()>& pred, std::uint64_t timeout_ms);
void run_for(uv_loop_t* loop, std::uint64_t ms);

struct Received {
  std::string routing_id;
  std::string user_id;
  protocol::Message message;
  std::uint64_t at_ms = 0;  // wall clock
};

class TestCoordinator {
 public:
  TestCoordinator(uv_loop_t* loop, transport::CurveKeyPair server, int port);
  ~TestCoordinator();

  void start();
  void stop();  // closes the sockets abruptly (as a killed process would)
  int port() const { return m_port; }

  // Answers HELLO with WELCOME and REPORTs from unknown peers with ERROR 410.
  std::uint32_t report_interval_ms = 200;
  std::uint32_t heartbeat_interval_ms = 200;
  std::uint32_t liveness = 3;
  bool auto_welcome = true;
  std::set<std::string> allowed_keys;  // empty: allow every key
  std::uint64_t zap_refused = 0;

  bool send(const protocol::Message& m);
  bool send_raw(const std::vector<std::uint8_t>& frame);

  std::vector<Received> log;
  std::string peer;  // the last agent routing id
  std::set<std::string> sessions;  // routing ids with a session

  template <typename T>
  std::vector<std::pair<T, Received>> all() const {
    std::vector<std::pair<T, Received>> out;
    for (const auto& r : log) {
      if (const auto* m = std::get_if<T>(&r.message)) out.emplace_back(*m, r);
    }
    return out;
  }
  template <typename T>
  std::size_t count() const { return all<T>().size(); }

 private:
  uv_loop_t* m_loop;
  transport::CurveKeyPair m_server;
  int m_port;
  std::unique_ptr<zmq::context_t> m_context;
  std::unique_ptr<transport::ZapHandler> m_zap;
  std::unique_ptr<transport::Router> m_router;
  uv_timer_t* m_heartbeat = nullptr;
  std::uint64_t m_session_counter = 0;
};

// A child process with its stdout captured line by line.
class Child {
 public:
  Child(uv_loop_t* loop, std::vector<std::string> args, std::map<std::string, std::string> env,
        bool capture_stdout);
  ~Child();
  int pid() const { return m_process ? m_process->pid : 0; }
  bool exited() const { return m_exited; }
  std::int64_t exit_status() const { return m_exit_status; }
  void kill(int signum);
  const std::string& output() const { return m_output; }

 private:
  struct State;
  uv_process_t* m_process = nullptr;
  uv_pipe_t* m_pipe = nullptr;
  bool m_exited = false;
  std::int64_t m_exit_status = -1;
  std::string m_output;
  uv_loop_t* m_loop;
};

// Starts tide-sample-app on 127.0.0.1 with a free port; returns its port.
int start_sample_app(uv_loop_t* loop, std::unique_ptr<Child>& child, std::uint32_t ready_after_ms);

// A tiny blocking HTTP GET (for /admin/ready flips); returns the status code.
int http_get(int port, const std::string& path);

std::filesystem::path make_temp_dir();

}  // namespace tide::test
