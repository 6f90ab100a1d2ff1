// Test scaffolding for the AgentGateway: a real libuv loop, a recording
// AgentGatewayHandler, and simulated agents that are real transport::Dealer
// sockets on tcp://127.0.0.1. Every wait is bounded by a uv timer deadline,
// so a gateway bug fails a test instead of hanging it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <uv.h>
#include <zmq.hpp>

#include "coordinator/io/server/agent_gateway.hpp"
#include "protocol/codec.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/curve.hpp"
#include "protocol/transport/dealer.hpp"

namespace tide::coordinator::test {

// Owns the loop. Derived fixtures' members (the gateway, agents' context) are
// destroyed first; this destructor then runs the loop once more so that the
// closed sockets' poll handles are released.
class LoopBase {
 public:
  LoopBase() {
    uv_loop_init(&m_loop);
    uv_timer_init(&m_loop, &m_timer);
    m_timer.data = this;
  }
  ~LoopBase() {
    uv_close(reinterpret_cast<uv_handle_t*>(&m_timer), nullptr);
    uv_run(&m_loop, UV_RUN_DEFAULT);
    uv_loop_close(&m_loop);
  }
  LoopBase(const LoopBase&) = delete;
  LoopBase& operator=(const LoopBase&) = delete;

  uv_loop_t* loop() { return &m_loop; }
  std::uint64_t now_ms() { return uv_now(&m_loop); }

  // Runs the loop until done() holds (checked every 2 ms) or timeout_ms
  // passes on the loop's clock. done() may have side effects (pumping sends).
  bool run_until(std::function<bool()> done, std::uint64_t timeout_ms = 5000) {
    if (done()) return true;
    m_done = std::move(done);
    m_done_result = false;
    uv_update_time(&m_loop);
    m_deadline_ms = uv_now(&m_loop) + timeout_ms;
    uv_timer_start(&m_timer, &LoopBase::on_tick, 2, 2);
    uv_run(&m_loop, UV_RUN_DEFAULT);
    uv_timer_stop(&m_timer);
    m_done = nullptr;
    // Not done() again: it may have side effects (a send per call).
    return m_done_result;
  }

  void run_for(std::uint64_t duration_ms) {
    (void)run_until([] { return false; }, duration_ms);
  }

 private:
  static void on_tick(uv_timer_t* timer) {
    auto* self = static_cast<LoopBase*>(timer->data);
    self->m_done_result = self->m_done();
    if (self->m_done_result || uv_now(&self->m_loop) >= self->m_deadline_ms) uv_stop(&self->m_loop);
  }

  uv_loop_t m_loop{};
  uv_timer_t m_timer{};
  std::function<bool()> m_done;
  std::uint64_t m_deadline_ms = 0;
  bool m_done_result = false;
};

// Records every call; accepts a HELLO for a known instance with its token.
class RecordingHandler : public AgentGatewayHandler {
 public:
  explicit RecordingHandler(uv_loop_t* loop) : m_loop(loop) {}

  struct HelloCall {
    std::string instance_id;
    std::string agent_key;
  };
  struct ReportCall {
    std::string instance_id;
    std::uint64_t seq = 0;
    bool ready = false;
  };
  struct LostCall {
    std::string instance_id;
    std::string reason;
    std::uint64_t at_ms = 0;  // uv_now
  };

  std::map<std::string, std::string> tokens;  // known instance id -> enrollment token
  std::set<std::string> allowed_keys;         // ZAP: CURVE public keys (Z85) let in
  std::map<std::string, std::string> bound_keys;  // instance id -> the only key that may speak for it

  std::vector<std::string> zap_keys;
  std::vector<HelloCall> hellos;
  std::vector<ReportCall> reports;
  std::vector<LostCall> lost;
  std::vector<std::pair<std::string, std::uint64_t>> acks;
  std::vector<std::pair<std::string, protocol::HookResult>> hook_results;

  bool allow_agent_key(std::string_view agent_key) override {
    zap_keys.emplace_back(agent_key);
    return allowed_keys.count(std::string(agent_key)) != 0;
  }
  HelloVerdict on_hello(const protocol::Hello& hello, std::string_view agent_key) override {
    hellos.push_back(HelloCall{hello.instance_id, std::string(agent_key)});
    const auto it = tokens.find(hello.instance_id);
    if (it == tokens.end()) {
      return HelloVerdict{false, protocol::ErrorCode::UnknownInstance, "unknown instance"};
    }
    if (const auto bound = bound_keys.find(hello.instance_id);
        bound != bound_keys.end() && bound->second != agent_key) {
      return HelloVerdict{false, protocol::ErrorCode::Unauthorized, "bound to another agent key"};
    }
    if (it->second != hello.enrollment_token) {
      return HelloVerdict{false, protocol::ErrorCode::Unauthorized, "bad enrollment token"};
    }
    return HelloVerdict{true, protocol::ErrorCode::Unauthorized, ""};
  }
  void on_report(const std::string& instance_id, const protocol::Report& report) override {
    reports.push_back(ReportCall{instance_id, report.seq, report.ready});
  }
  void on_lost(const std::string& instance_id, std::string_view reason) override {
    lost.push_back(LostCall{instance_id, std::string(reason), uv_now(m_loop)});
  }
  void on_ack(const std::string& instance_id, std::uint64_t command_id) override {
    acks.emplace_back(instance_id, command_id);
  }
  void on_hook_result(const std::string& instance_id, const protocol::HookResult& result) override {
    hook_results.emplace_back(instance_id, result);
  }

 private:
  uv_loop_t* m_loop;
};

// One simulated agent: a real Dealer whose inbound frames are decoded.
class TestAgent {
 public:
  TestAgent(uv_loop_t* loop, zmq::context_t& context, const std::string& endpoint,
            const std::string& routing_id, std::optional<transport::DealerCurve> curve,
            bool immediate = true)
      : m_loop(loop), m_routing_id(routing_id) {
    transport::DealerOptions options;
    options.immediate = immediate;
    options.endpoint = endpoint;
    options.routing_id = routing_id;
    options.curve = std::move(curve);
    m_dealer = std::make_unique<transport::Dealer>(loop, context, options);
    m_dealer->on_message([this](std::span<const std::uint8_t> frame) {
      auto decoded = protocol::decode(frame);
      if (!decoded) {
        ++undecodable;
        return;
      }
      inbox.push_back(Received{std::move(*decoded), uv_now(m_loop)});
    });
    m_dealer->on_event([this](transport::DealerEvent event) { events.push_back(event); });
  }

  struct Received {
    protocol::Message message;
    std::uint64_t at_ms = 0;  // uv_now
  };

  // Idempotent: an agent that already connected keeps its connection.
  [[nodiscard]] bool connect() {
    if (!m_connected) m_connected = m_dealer->connect().has_value();
    return m_connected;
  }
  // Fails (WouldBlock) until the handshake is done: the Dealer is IMMEDIATE.
  [[nodiscard]] bool send(const protocol::Message& message) {
    return m_dealer->send(protocol::encode(message)).has_value();
  }
  [[nodiscard]] bool send_raw(const std::vector<std::uint8_t>& frame) {
    return m_dealer->send(frame).has_value();
  }
  void close() { m_dealer->close(); }
  [[nodiscard]] const std::string& routing_id() const { return m_routing_id; }

  template <class T>
  [[nodiscard]] std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& r : inbox) {
      if (const auto* m = std::get_if<T>(&r.message)) out.push_back(*m);
    }
    return out;
  }
  template <class T>
  [[nodiscard]] std::size_t count() const {
    std::size_t n = 0;
    for (const auto& r : inbox) n += std::holds_alternative<T>(r.message) ? 1U : 0U;
    return n;
  }
  [[nodiscard]] std::size_t errors(protocol::ErrorCode code) const {
    std::size_t n = 0;
    for (const auto& e : all<protocol::Error>()) n += e.code == code ? 1U : 0U;
    return n;
  }
  [[nodiscard]] bool saw(transport::DealerEvent event) const {
    for (auto e : events) {
      if (e == event) return true;
    }
    return false;
  }

  std::vector<Received> inbox;
  std::vector<transport::DealerEvent> events;
  std::size_t undecodable = 0;

 private:
  uv_loop_t* m_loop;
  std::string m_routing_id;
  std::unique_ptr<transport::Dealer> m_dealer;
  bool m_connected = false;
};

inline protocol::Hello make_hello(const std::string& instance_id, const std::string& token) {
  protocol::Hello hello;
  hello.instance_id = instance_id;
  hello.enrollment_token = token;
  hello.agent_version = "0.1.0";
  hello.hostname = "test-host";
  hello.service_address = "127.0.0.1";
  hello.service_port = 8080;
  hello.capabilities = {"drain", "hooks"};
  return hello;
}

inline protocol::Report make_report(std::uint64_t seq, bool ready = true) {
  protocol::Report report;
  report.seq = seq;
  report.timestamp_ms = 1'790'000'000'000ULL + seq;
  report.ready = ready;
  report.ready_reason = ready ? "probes passing" : "starting";
  report.healthy = true;
  report.probes.push_back(protocol::ProbeResult{"http", protocol::ProbeKind::Http, ready, "", 2});
  report.metrics.cpu_pct = 12.5;
  report.metrics.load1 = 0.3;
  return report;
}

// A gateway under test plus what its agents need. Agents are test-body
// locals, so they are closed before the gateway and the context go.
class GatewayFixture : public LoopBase {
 public:
  GatewayFixture() : handler(loop()) {}
  ~GatewayFixture() { gateway.reset(); }

  // Fast defaults so that tests about something else are not slowed down
  // and no session is lost under a loaded machine.
  static GatewayConfig quick_config() {
    GatewayConfig config;
    config.report_interval_ms = 1000;
    config.heartbeat_interval_ms = 1000;
    config.liveness = 5;
    config.command_resend_ms = 100;
    config.command_attempts = 5;
    return config;
  }

  // Starts the gateway on tcp://127.0.0.1:* (CURVE on when `curve`).
  bool start(GatewayConfig config, bool curve) {
    config.router.endpoint = "tcp://127.0.0.1:*";
    if (curve) {
      auto keys = transport::generate_curve_keypair();
      if (!keys) return false;
      server_keys = *keys;
      config.router.curve_server_secret_z85 = keys->secret_z85;
    }
    gateway = std::make_unique<AgentGateway>(loop(), config, handler);
    auto bound = gateway->start();
    if (!bound) return false;
    endpoint = *bound;
    return true;
  }

  // A fresh agent key pair that the handler's ZAP check allows (or not).
  transport::CurveKeyPair agent_keys(bool allowed) {
    auto keys = transport::generate_curve_keypair();
    if (!keys) throw std::runtime_error("generate_curve_keypair failed");
    if (allowed) handler.allowed_keys.insert(keys->public_z85);
    return *keys;
  }

  // An agent for `instance_id` (routing id "a:<id>/<nonce>"); with CURVE when the
  // gateway has it, using `keys` or a fresh allowed pair.
  std::unique_ptr<TestAgent> make_agent(const std::string& instance_id,
                                        std::optional<transport::CurveKeyPair> keys = std::nullopt,
                                        bool immediate = true) {
    return make_peer(transport::new_agent_routing_id(instance_id), std::move(keys), immediate);
  }

  // A connection with the given routing id: another socket of the same agent
  // (ZeroMQ reconnecting), or an impostor that knows or guesses the id.
  std::unique_ptr<TestAgent> make_peer(const std::string& routing_id,
                                       std::optional<transport::CurveKeyPair> keys = std::nullopt,
                                       bool immediate = true) {
    std::optional<transport::DealerCurve> curve;
    if (server_keys) {
      curve = transport::DealerCurve{server_keys->public_z85, keys ? *keys : agent_keys(true)};
    }
    return std::make_unique<TestAgent>(loop(), agents_context, endpoint, routing_id, std::move(curve), immediate);
  }

  // Sends `message` as soon as the agent is connected; false on timeout.
  bool send_when_connected(TestAgent& agent, const protocol::Message& message,
                           std::uint64_t timeout_ms = 5000) {
    return run_until([&] { return agent.send(message); }, timeout_ms);
  }

  // Connects, says HELLO and waits for the answer (WELCOME or ERROR).
  bool hello(TestAgent& agent, const std::string& instance_id, const std::string& token) {
    if (!agent.connect()) return false;
    const std::size_t before = agent.inbox.size();
    bool sent = false;
    return run_until([&] {
      if (!sent) sent = agent.send(make_hello(instance_id, token));
      for (std::size_t i = before; i < agent.inbox.size(); ++i) {
        const auto& m = agent.inbox[i].message;
        if (std::holds_alternative<protocol::Welcome>(m) || std::holds_alternative<protocol::Error>(m)) {
          return true;
        }
      }
      return false;
    });
  }

  // Sends every message, retrying those the Dealer's small SNDHWM refuses,
  // until all are queued; then waits for done().
  bool send_all(TestAgent& agent, const std::vector<protocol::Message>& messages,
                const std::function<bool()>& done, std::uint64_t timeout_ms = 5000) {
    std::size_t next = 0;
    return run_until(
        [&] {
          while (next < messages.size() && agent.send(messages[next])) ++next;
          return next == messages.size() && done();
        },
        timeout_ms);
  }

  // The gateway's context is its own; agents use this one (tcp only).
  zmq::context_t agents_context;
  RecordingHandler handler;
  std::optional<transport::CurveKeyPair> server_keys;
  std::unique_ptr<AgentGateway> gateway;
  std::string endpoint;
};

}  // namespace tide::coordinator::test
