// bench_ingest: can one coordinator take 10,000 agents at 1 REPORT/s each?
//
// The bench process runs one AgentGateway (the real one, on a libuv loop)
// with a handler that accepts every HELLO and, per REPORT, updates an entry
// of a hash map keyed by instance id (about what the control loop's fast path
// does). The agents are simulated in child processes (fork + exec of this
// binary with --swarm), --per-process agents each. A simulated agent is one
// nonblocking TCP connection speaking ZMTP 3.0 as a DEALER through our own
// small client (zmtp_client.hpp: one epoll loop drives all of a process's
// connections), not a libzmq socket: a libzmq DEALER per agent (socket,
// mailbox, I/O-thread work) made a 10,000-agent swarm take more CPU than the
// gateway it was meant to measure. Each agent has its routing id
// "a:<instance>/<nonce>" and, with --curve, its own CURVE key pair; it says HELLO,
// then sends one REPORT per second, the agents' phases spread over the second.
//
// Once every agent has a session (plus a short settling time), the bench
// measures over --seconds: REPORTs/s received, the gateway's p50/p99 report
// processing latency (AgentGateway::report_latency(): decode + handler), the
// end-to-end latency of each REPORT (the swarm stamps it with the wall clock
// in microseconds just before it is written, metrics.custom["bench_sent_us"];
// the handler takes now - stamp: socket buffers, the gateway's ZeroMQ I/O
// thread, waiting for the loop, decode), the loop's timer lag, this process's
// CPU % (of one core, /proc/self/stat) and peak RSS (VmHWM, /proc/self/status),
// and the swarm processes' CPU. Children get SIGTERM at the end, SIGKILL if they
// linger, and die with the parent (PR_SET_PDEATHSIG) and by their own deadline.
//
// Usage: bench_ingest [--agents N] [--curve] [--seconds S] [--per-process K]
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "coordinator/io/server/agent_gateway.hpp"
#include "protocol/codec.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/common.hpp"
#include "protocol/transport/curve.hpp"
#include "tests/bench/coordinator/zmtp_client.hpp"

namespace proto = tide::protocol;
namespace tx = tide::transport;
namespace zmtp = tide::zmtp;
using tide::coordinator::AgentGateway;
using tide::coordinator::AgentGatewayHandler;
using tide::coordinator::GatewayConfig;
using tide::coordinator::HelloVerdict;

namespace {

constexpr std::uint32_t kReportIntervalMs = 1000;
constexpr std::uint64_t kTickMs = 10;
// The wall-clock stamp (µs since the Unix epoch) a swarm puts in each REPORT.
// A double holds integers up to 2^53 exactly: µs stamps until the year 2255.
constexpr const char* kSentStampMetric = "bench_sent_us";

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
  }
}

rlim_t fd_limit() {
  rlimit limit{};
  return getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 0;
}

std::string instance_name(std::uint64_t index) { return "i-" + std::to_string(index); }

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::uint64_t wall_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// ---- the swarm (child process) -------------------------------------------------

struct SimAgent {
  std::string instance_id;
  zmtp::SessionOptions session;        // routing id, CURVE keys
  zmtp::ConnectionId connection = 0;   // 0: no connection (not started, or closed)
  bool started = false;                // the ramp reached it
  bool ready = false;                  // ZMTP handshake done
  bool welcomed = false;
  bool hello_due = true;
  bool schedule_first = false;         // welcomed: pick a random phase on the next tick
  std::uint64_t seq = 0;
  std::uint64_t next_report_ms = 0;
  std::uint64_t next_hello_ms = 0;
  std::uint64_t reconnect_at_ms = 0;
  std::uint64_t reconnect_ivl_ms = 100;  // libzmq's RECONNECT_IVL 100 ms, doubling to 5 s
};

struct SwarmArgs {
  std::string endpoint;
  std::string server_public_key;  // empty: no CURVE
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::uint64_t deadline_s = 600;
  std::uint64_t ramp = 50;  // new connections per 10 ms tick
  bool verbose = false;     // a status line on stderr every 5 s
};

std::vector<std::uint8_t> encode_report(std::uint64_t seq, std::mt19937_64& random) {
  proto::Report report;
  report.seq = seq;
  const std::uint64_t now_us = wall_us();
  report.timestamp_ms = now_us / 1000;
  report.ready = true;
  report.ready_reason = "probes passing";
  report.healthy = true;
  report.probes.push_back(proto::ProbeResult{"http", proto::ProbeKind::Http, true, "", 2});
  report.metrics.cpu_pct = static_cast<double>(random() % 10'000) / 100.0;
  report.metrics.memory_pct = 42.0;
  report.metrics.load1 = 0.5;
  report.metrics.tcp_established = static_cast<std::uint32_t>(random() % 500);
  report.metrics.custom[kSentStampMetric] = static_cast<double>(now_us);
  return proto::encode(proto::Message{report});
}

std::vector<std::uint8_t> encode_hello(const std::string& instance_id) {
  proto::Hello hello;
  hello.instance_id = instance_id;
  hello.enrollment_token = "bench";
  hello.agent_version = "0.1.0";
  hello.hostname = "swarm";
  hello.service_address = "127.0.0.1";
  hello.service_port = 8080;
  hello.capabilities = {"drain"};
  return proto::encode(proto::Message{hello});
}

class Swarm {
 public:
  explicit Swarm(const SwarmArgs& args)
      : m_args(args), m_random(args.first * 7919 + 17), m_agents(args.count) {}

  int run() {
    std::optional<zmtp::Key> server_key;
    if (!m_args.server_public_key.empty()) {
      server_key = zmtp::z85_decode_key(m_args.server_public_key);
      if (!server_key) {
        std::fprintf(stderr, "swarm: --server-key is not a Z85 key\n");
        return 1;
      }
    }
    for (std::uint64_t i = 0; i < m_agents.size(); ++i) {
      SimAgent& agent = m_agents[i];
      agent.instance_id = instance_name(m_args.first + i);
      agent.session.routing_id = tx::new_agent_routing_id(agent.instance_id);
      if (server_key) agent.session.curve = zmtp::CurveOptions{*server_key, zmtp::generate_keypair()};
    }
    zmtp::PoolCallbacks callbacks;
    callbacks.on_ready = [this](zmtp::ConnectionId, std::uint64_t tag) { on_ready(m_agents[tag]); };
    callbacks.on_message = [this](zmtp::ConnectionId, std::uint64_t tag, const zmtp::Message& message) {
      on_message(m_agents[tag], message);
    };
    callbacks.on_closed = [this](zmtp::ConnectionId, std::uint64_t tag, const zmtp::Error& error) {
      on_closed(m_agents[tag], error);
    };
    m_pool.set_callbacks(std::move(callbacks));

    m_start_ms = steady_ms();
    m_last_print_ms = m_start_ms;
    std::uint64_t next_tick_ms = m_start_ms;
    for (;;) {
      const std::uint64_t now = steady_ms();
      if (now >= next_tick_ms) {
        if (now - m_start_ms > m_args.deadline_s * 1000) break;
        tick(now);
        next_tick_ms += kTickMs;
        if (next_tick_ms <= now) next_tick_ms = now + kTickMs;
      }
      const std::uint64_t after = steady_ms();
      const int wait_ms = next_tick_ms > after ? static_cast<int>(next_tick_ms - after) : 0;
      if (auto polled = m_pool.poll(wait_ms); !polled) {
        std::fprintf(stderr, "swarm: %s\n", polled.error().detail.c_str());
        return 1;
      }
    }
    m_pool.close_all();
    return 0;
  }

 private:
  void connect(SimAgent& agent, std::uint64_t now) {
    const auto tag = static_cast<std::uint64_t>(&agent - m_agents.data());
    auto id = m_pool.connect(m_args.endpoint, agent.session, tag);
    if (id) {
      agent.connection = *id;
      return;
    }
    ++m_connect_failures;
    agent.reconnect_at_ms = now + agent.reconnect_ivl_ms;
    agent.reconnect_ivl_ms = std::min<std::uint64_t>(agent.reconnect_ivl_ms * 2, 5000);
  }

  void send_hello(SimAgent& agent, std::uint64_t now) {
    // Resent every 2 s until WELCOME, in case the answer was lost.
    const bool sent = m_pool.send(agent.connection, encode_hello(agent.instance_id)).has_value();
    ++(sent ? m_hello_sent : m_hello_failed);
    agent.next_hello_ms = now + (sent ? 2000 : 50);
  }

  void on_ready(SimAgent& agent) {
    agent.ready = true;
    agent.reconnect_ivl_ms = 100;
    agent.hello_due = true;
    send_hello(agent, steady_ms());
  }

  void on_message(SimAgent& agent, const zmtp::Message& frames) {
    if (frames.size() != 1) return;  // a ROUTER peer sends one frame per message
    auto message = proto::decode(frames[0]);
    if (!message) return;
    if (std::holds_alternative<proto::Welcome>(*message)) {
      agent.welcomed = true;
      agent.hello_due = false;
      agent.seq = 0;  // a new session starts at seq 1
      agent.schedule_first = true;
    } else if (const auto* error = std::get_if<proto::Error>(&*message)) {
      if (error->code == proto::ErrorCode::UnknownSession) {
        agent.welcomed = false;
        agent.hello_due = true;
        agent.next_hello_ms = 0;
      }
    } else if (std::holds_alternative<proto::Goodbye>(*message)) {
      agent.welcomed = false;
      agent.hello_due = true;
      agent.next_hello_ms = 0;
    }
  }

  void on_closed(SimAgent& agent, const zmtp::Error& error) {
    ++m_closed[static_cast<std::size_t>(error.kind)];
    if (m_args.verbose && m_closed_printed < 5) {
      ++m_closed_printed;
      std::fprintf(stderr, "swarm %llu: %s lost its connection: %s\n", static_cast<unsigned long long>(m_args.first),
                   agent.instance_id.c_str(), error.detail.c_str());
    }
    agent.connection = 0;
    agent.ready = false;
    agent.welcomed = false;
    agent.hello_due = true;
    agent.reconnect_at_ms = steady_ms() + agent.reconnect_ivl_ms;
    agent.reconnect_ivl_ms = std::min<std::uint64_t>(agent.reconnect_ivl_ms * 2, 5000);
  }

  void tick(std::uint64_t now) {
    // A bounded connection ramp: the listen backlog is ZeroMQ's default
    // 100, and a dropped SYN costs its agent seconds of TCP back-off.
    for (std::uint64_t n = 0; n < m_args.ramp && m_next_connect < m_agents.size(); ++n, ++m_next_connect) {
      SimAgent& agent = m_agents[m_next_connect];
      agent.started = true;
      connect(agent, now);
    }
    for (std::uint64_t i = 0; i < m_next_connect; ++i) {
      SimAgent& agent = m_agents[i];
      if (agent.connection == 0) {
        if (now >= agent.reconnect_at_ms) connect(agent, now);
        continue;
      }
      if (!agent.ready) continue;
      if (agent.hello_due) {
        if (now >= agent.next_hello_ms) send_hello(agent, now);
        continue;
      }
      if (!agent.welcomed) continue;
      if (agent.schedule_first) {
        // Phases spread over the interval so the fleet does not report in lock-step.
        agent.schedule_first = false;
        agent.next_report_ms = now + m_random() % kReportIntervalMs;
      }
      if (now < agent.next_report_ms) continue;
      ++(m_pool.send(agent.connection, encode_report(++agent.seq, m_random)) ? m_report_sent : m_report_failed);
      agent.next_report_ms += kReportIntervalMs;
      if (agent.next_report_ms < now) agent.next_report_ms = now + kReportIntervalMs;
    }
    if (m_args.verbose && now - m_last_print_ms >= 5000) print_status(now);
  }

  void print_status(std::uint64_t now) {
    m_last_print_ms = now;
    std::uint64_t connecting = 0;
    std::uint64_t ready = 0;
    std::uint64_t welcomed = 0;
    for (const SimAgent& agent : m_agents) {
      connecting += agent.connection != 0 && !agent.ready ? 1 : 0;
      ready += agent.ready ? 1 : 0;
      welcomed += agent.welcomed ? 1 : 0;
    }
    std::string closes;
    for (std::size_t k = 0; k < m_closed.size(); ++k) {
      if (m_closed[k] == 0) continue;
      closes += " " + std::string(zmtp::to_string(static_cast<zmtp::Error::Kind>(k))) + "=" +
                std::to_string(m_closed[k]);
    }
    std::fprintf(stderr,
                 "swarm %llu: t=%llu s started %llu connecting %llu ready %llu welcomed %llu | last 5 s: HELLO sent "
                 "%llu failed %llu, REPORT sent %llu failed %llu, connect() failed %llu, closed:%s\n",
                 static_cast<unsigned long long>(m_args.first),
                 static_cast<unsigned long long>((now - m_start_ms) / 1000),
                 static_cast<unsigned long long>(m_next_connect), static_cast<unsigned long long>(connecting),
                 static_cast<unsigned long long>(ready), static_cast<unsigned long long>(welcomed),
                 static_cast<unsigned long long>(m_hello_sent), static_cast<unsigned long long>(m_hello_failed),
                 static_cast<unsigned long long>(m_report_sent), static_cast<unsigned long long>(m_report_failed),
                 static_cast<unsigned long long>(m_connect_failures), closes.empty() ? " none" : closes.c_str());
    m_hello_sent = m_hello_failed = m_report_sent = m_report_failed = m_connect_failures = 0;
    m_closed.fill(0);
  }

  const SwarmArgs& m_args;
  std::mt19937_64 m_random;
  std::vector<SimAgent> m_agents;
  zmtp::Pool m_pool;
  std::uint64_t m_start_ms = 0;
  std::uint64_t m_next_connect = 0;
  // Diagnostics, printed every 5 s with --verbose: why agents lack a session.
  std::uint64_t m_hello_sent = 0;
  std::uint64_t m_hello_failed = 0;
  std::uint64_t m_report_sent = 0;
  std::uint64_t m_report_failed = 0;
  std::uint64_t m_connect_failures = 0;
  std::array<std::uint64_t, 8> m_closed{};  // by zmtp::Error::Kind
  std::uint64_t m_closed_printed = 0;
  std::uint64_t m_last_print_ms = 0;
};

int run_swarm(const SwarmArgs& args) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the bench
  if (::getppid() == 1) return 1;
  raise_fd_limit();
  Swarm swarm(args);
  return swarm.run();
}

// ---- the coordinator side ------------------------------------------------------

// Accepts every HELLO; per REPORT updates the instance's entry, roughly what
// the control loop's fast path does with it.
class BenchHandler : public AgentGatewayHandler {
 public:
  struct Entry {
    bool ready = false;
    bool healthy = false;
    bool draining = false;
    std::uint64_t last_seq = 0;
    std::uint64_t reports = 0;
    double cpu_pct = 0;
    std::uint64_t agent_timestamp_ms = 0;
  };

  bool allow_agent_key(std::string_view) override { return true; }
  HelloVerdict on_hello(const proto::Hello& hello, std::string_view) override {
    m_entries[hello.instance_id];
    return HelloVerdict{true, proto::ErrorCode::Unauthorized, ""};
  }
  void on_report(const std::string& instance_id, const proto::Report& report) override {
    Entry& entry = m_entries[instance_id];
    entry.ready = report.ready;
    entry.healthy = report.healthy;
    entry.draining = report.draining;
    entry.last_seq = report.seq;
    entry.cpu_pct = report.metrics.cpu_pct.value_or(0.0);
    entry.agent_timestamp_ms = report.timestamp_ms;
    ++entry.reports;
    if (recording) {
      // End to end: the swarm's stamp just before the write to now (same host
      // clock); the millisecond timestamp when the µs stamp is missing.
      const std::uint64_t now_us = wall_us();
      const auto stamp = report.metrics.custom.find(kSentStampMetric);
      const std::uint64_t sent_us =
          stamp != report.metrics.custom.end() ? static_cast<std::uint64_t>(stamp->second) : report.timestamp_ms * 1000;
      end_to_end_us.push_back(now_us > sent_us ? now_us - sent_us : 0);
    }
  }
  void on_lost(const std::string&, std::string_view) override { ++lost; }
  void on_ack(const std::string&, std::uint64_t) override {}
  void on_hook_result(const std::string&, const proto::HookResult&) override {}

  std::uint64_t lost = 0;
  bool recording = false;                   // during the measuring window
  std::vector<std::uint64_t> end_to_end_us;  // per REPORT received while recording

 private:
  std::unordered_map<std::string, Entry> m_entries;
};

// The whole of a small /proc file.
std::string read_proc_file(const char* path) {
  std::string content;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return content;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) content.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return content;
}

double process_cpu_seconds(const char* stat_path = "/proc/self/stat") {
  const std::string content = read_proc_file(stat_path);
  // Fields after the command name (which may hold spaces) start at ") ";
  // that is field 3, and utime and stime are fields 14 and 15.
  const auto close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(content.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::uint64_t status_kb(const std::string& key) {
  std::istringstream in(read_proc_file("/proc/self/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

std::string load_average() {
  std::istringstream in(read_proc_file("/proc/loadavg"));
  std::string one;
  std::string five;
  std::string fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

struct Children {
  std::vector<pid_t> pids;
  ~Children() { stop(); }
  void stop() {
    for (pid_t pid : pids) ::kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (pid_t pid : pids) {
      while (::waitpid(pid, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid, SIGKILL);
          (void)::waitpid(pid, nullptr, 0);
          break;
        }
        ::usleep(10'000);
      }
    }
    pids.clear();
  }
};

Children* g_children = nullptr;

void on_fatal_signal(int signal_number) {
  if (g_children != nullptr) {
    for (pid_t pid : g_children->pids) ::kill(pid, SIGKILL);
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

pid_t spawn_swarm(const std::string& self, const SwarmArgs& args) {
  std::vector<std::string> argv{self,
                                "--swarm",
                                "--endpoint",
                                args.endpoint,
                                "--first",
                                std::to_string(args.first),
                                "--count",
                                std::to_string(args.count),
                                "--deadline",
                                std::to_string(args.deadline_s),
                                "--ramp",
                                std::to_string(args.ramp)};
  if (args.verbose) argv.emplace_back("--verbose");
  if (!args.server_public_key.empty()) {
    argv.emplace_back("--server-key");
    argv.push_back(args.server_public_key);
  }
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(self.c_str(), c_argv.data());
    ::_exit(127);
  }
  return pid;
}

// Timer lag samples (ms), to show how long a frame can wait in the queue.
struct LagProbe {
  uv_timer_t timer{};
  std::uint64_t expected_ms = 0;
  std::vector<std::uint64_t> samples;
  bool recording = false;
};

std::uint64_t percentile(std::vector<std::uint64_t> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  return values[index];
}

struct BenchArgs {
  std::uint64_t agents = 1000;
  bool curve = false;
  std::uint64_t seconds = 20;
  std::uint64_t per_process = 5000;  // one fd per agent: 15,000 fit under the 20,000 limit
  std::uint64_t connect_timeout_s = 180;
  std::uint64_t liveness = 5;
  std::uint64_t connect_rate = 2000;  // new connections per second, all swarm processes together
  bool verbose = false;
  std::optional<std::uint64_t> zmtp_heartbeat_ms;  // none: the gateway's default
};

// CPU seconds of every swarm process together (they share the 2 cores with
// the gateway; a starved swarm sends late and looks like a slow gateway).
double children_cpu_seconds(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t pid : pids) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    total += process_cpu_seconds(path.c_str());
  }
  return total;
}

int run_bench(const BenchArgs& args) {
  raise_fd_limit();
  if (args.agents + 200 > fd_limit()) {
    std::fprintf(stderr, "bench_ingest: %llu agents need more than the fd limit %llu\n",
                 static_cast<unsigned long long>(args.agents), static_cast<unsigned long long>(fd_limit()));
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);

  GatewayConfig config;
  config.router.endpoint = "tcp://127.0.0.1:*";
  config.report_interval_ms = kReportIntervalMs;
  config.heartbeat_interval_ms = 1000;
  config.liveness = static_cast<std::uint32_t>(args.liveness);  // 5 by default: a loaded machine must not lose agents
  if (args.zmtp_heartbeat_ms) {
    // ZMTP PING interval on the gateway's ROUTER (0: off). Each PING arms a
    // time-out timer that the next inbound frame cancels, and libzmq 4.3's
    // cancel_timer() walks every timer of the I/O thread: with thousands of
    // peers that walk is most of the I/O thread's CPU.
    config.router.heartbeat_ivl_ms = static_cast<int>(*args.zmtp_heartbeat_ms);
    config.router.heartbeat_timeout_ms = static_cast<int>(3 * *args.zmtp_heartbeat_ms);
  }
  std::string server_public;
  if (args.curve) {
    auto keys = tx::generate_curve_keypair();
    if (!keys) {
      std::fprintf(stderr, "bench_ingest: %s\n", keys.error().detail.c_str());
      return 1;
    }
    config.router.curve_server_secret_z85 = keys->secret_z85;
    server_public = keys->public_z85;
  }
  BenchHandler handler;
  auto gateway = std::make_unique<AgentGateway>(&loop, config, handler);
  auto endpoint = gateway->start();
  if (!endpoint) {
    std::fprintf(stderr, "bench_ingest: gateway start: %s\n", endpoint.error().detail.c_str());
    return 1;
  }

  Children children;
  g_children = &children;
  ::signal(SIGINT, on_fatal_signal);
  ::signal(SIGTERM, on_fatal_signal);
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0) return 1;
  self[length] = '\0';
  const std::uint64_t deadline_s = args.connect_timeout_s + args.seconds + 60;
  for (std::uint64_t first = 0; first < args.agents; first += args.per_process) {
    const std::uint64_t processes = (args.agents + args.per_process - 1) / args.per_process;
    // About --connect-rate new connections per second in all, whatever the
    // process count (each swarm ticks every 10 ms; at least one per tick).
    SwarmArgs swarm{*endpoint, server_public, first, std::min(args.per_process, args.agents - first),
                    deadline_s, std::max<std::uint64_t>(1, args.connect_rate / 100 / processes), args.verbose};
    const pid_t pid = spawn_swarm(self, swarm);
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    children.pids.push_back(pid);
  }
  std::printf("bench_ingest: %llu agents in %zu processes, CURVE %s, gateway on %s, ZMTP heartbeat %d ms\n",
              static_cast<unsigned long long>(args.agents), children.pids.size(), args.curve ? "on" : "off",
              endpoint->c_str(), config.router.heartbeat_ivl_ms);
  std::fflush(stdout);

  LagProbe lag;
  uv_timer_init(&loop, &lag.timer);
  lag.timer.data = &lag;
  lag.expected_ms = uv_now(&loop) + 10;
  uv_timer_start(
      &lag.timer,
      [](uv_timer_t* t) {
        auto& probe = *static_cast<LagProbe*>(t->data);
        uv_update_time(t->loop);
        const std::uint64_t now = uv_now(t->loop);
        if (probe.recording) probe.samples.push_back(now > probe.expected_ms ? now - probe.expected_ms : 0);
        probe.expected_ms = now + 10;
      },
      10, 10);

  enum class Phase { Connecting, Settling, Measuring, Done };
  struct State {
    Phase phase = Phase::Connecting;
    const BenchArgs* args;
    AgentGateway* gateway;
    LagProbe* lag;
    BenchHandler* handler;
    std::uint64_t phase_start_ms = 0;
    std::uint64_t connect_ms = 0;
    std::uint64_t reports_before = 0;
    std::uint64_t stale_before = 0;
    std::uint64_t lost_before = 0;
    std::uint64_t hellos_before = 0;
    std::uint64_t last_progress_ms = 0;
    const std::vector<pid_t>* children = nullptr;
    double cpu_before = 0;
    double children_cpu_before = 0;
    std::chrono::steady_clock::time_point wall_before;
    std::string load_before;
    bool complete = true;
    // results
    double window_s = 0;
    double cpu_s = 0;
    double children_cpu_s = 0;
    std::uint64_t reports = 0;
    std::uint64_t lost = 0;
    std::uint64_t hellos = 0;
  } state;
  state.children = &children.pids;
  state.args = &args;
  state.gateway = gateway.get();
  state.lag = &lag;
  state.handler = &handler;
  state.phase_start_ms = uv_now(&loop);

  uv_timer_t phase_timer;
  uv_timer_init(&loop, &phase_timer);
  phase_timer.data = &state;
  uv_timer_start(
      &phase_timer,
      [](uv_timer_t* t) {
        auto& s = *static_cast<State*>(t->data);
        const std::uint64_t now = uv_now(t->loop);
        const auto& stats = s.gateway->stats();
        switch (s.phase) {
          case Phase::Connecting:
            // A line a second: how the sessions build up (and whether they churn).
            if (now - s.last_progress_ms >= 1000) {
              s.last_progress_ms = now;
              std::printf("  t=%5.1f s sessions %6llu hellos %6llu lost %5llu unknown-session %5llu reports %8llu "
                          "load %s\n",
                          static_cast<double>(now - s.phase_start_ms) / 1000.0,
                          static_cast<unsigned long long>(stats.sessions),
                          static_cast<unsigned long long>(stats.hellos),
                          static_cast<unsigned long long>(stats.sessions_lost),
                          static_cast<unsigned long long>(stats.unknown_session),
                          static_cast<unsigned long long>(stats.reports), load_average().c_str());
              std::fflush(stdout);
            }
            if (stats.sessions >= s.args->agents || now - s.phase_start_ms > s.args->connect_timeout_s * 1000) {
              s.complete = stats.sessions >= s.args->agents;
              s.connect_ms = now - s.phase_start_ms;
              std::printf("  %llu sessions after %.1f s%s\n", static_cast<unsigned long long>(stats.sessions),
                          static_cast<double>(s.connect_ms) / 1000.0,
                          s.complete ? "" : " (TIMEOUT: not every agent connected)");
              std::fflush(stdout);
              s.phase = Phase::Settling;
              s.phase_start_ms = now;
            }
            return;
          case Phase::Settling:
            // Two report intervals: every agent is in its steady rhythm.
            if (now - s.phase_start_ms < 2 * kReportIntervalMs) return;
            s.gateway->report_latency().reset();
            s.lag->samples.clear();
            s.lag->recording = true;
            s.handler->end_to_end_us.clear();
            s.handler->recording = true;
            s.reports_before = stats.reports;
            s.stale_before = stats.reports_stale;
            s.cpu_before = process_cpu_seconds();
            s.children_cpu_before = children_cpu_seconds(*s.children);
            s.lost_before = stats.sessions_lost;
            s.hellos_before = stats.hellos;
            s.wall_before = std::chrono::steady_clock::now();
            s.load_before = load_average();
            s.phase = Phase::Measuring;
            s.phase_start_ms = now;
            return;
          case Phase::Measuring:
            if (now - s.phase_start_ms < s.args->seconds * 1000) return;
            s.window_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.wall_before).count();
            s.cpu_s = process_cpu_seconds() - s.cpu_before;
            s.children_cpu_s = children_cpu_seconds(*s.children) - s.children_cpu_before;
            s.lost = stats.sessions_lost - s.lost_before;
            s.hellos = stats.hellos - s.hellos_before;
            s.reports = stats.reports - s.reports_before;
            s.lag->recording = false;
            s.handler->recording = false;
            s.phase = Phase::Done;
            uv_stop(t->loop);
            return;
          case Phase::Done:
            return;
        }
      },
      100, 100);

  uv_run(&loop, UV_RUN_DEFAULT);

  const auto& stats = gateway->stats();
  auto& latency = gateway->report_latency();
  const double rate = state.window_s > 0 ? static_cast<double>(state.reports) / state.window_s : 0;
  const double cpu_pct = state.window_s > 0 ? 100.0 * state.cpu_s / state.window_s : 0;
  std::printf("  window %.1f s, load average before %s, after %s\n", state.window_s, state.load_before.c_str(),
              load_average().c_str());
  std::printf("  reports/s received: %.0f (expected %llu)\n", rate,
              static_cast<unsigned long long>(args.agents));
  std::printf("  report processing latency (decode + handler): p50 <= %llu us, p99 <= %llu us, "
              "p99.9 <= %llu us (%llu samples)\n",
              static_cast<unsigned long long>(latency.quantile_us(0.5)),
              static_cast<unsigned long long>(latency.quantile_us(0.99)),
              static_cast<unsigned long long>(latency.quantile_us(0.999)),
              static_cast<unsigned long long>(latency.count()));
  const auto& e2e = handler.end_to_end_us;
  std::printf("  end-to-end REPORT latency (swarm stamp -> handler, same clock): p50 %.2f ms, p99 %.2f ms, "
              "p99.9 %.2f ms, max %.2f ms (%zu samples)\n",
              static_cast<double>(percentile(e2e, 0.5)) / 1000.0, static_cast<double>(percentile(e2e, 0.99)) / 1000.0,
              static_cast<double>(percentile(e2e, 0.999)) / 1000.0, static_cast<double>(percentile(e2e, 1.0)) / 1000.0,
              e2e.size());
  std::printf("  loop timer lag (queueing): p50 %llu ms, p99 %llu ms, max %llu ms\n",
              static_cast<unsigned long long>(percentile(lag.samples, 0.5)),
              static_cast<unsigned long long>(percentile(lag.samples, 0.99)),
              static_cast<unsigned long long>(percentile(lag.samples, 1.0)));
  std::printf("  coordinator CPU: %.1f %% of one core; peak RSS %llu kB (RSS now %llu kB)\n", cpu_pct,
              static_cast<unsigned long long>(status_kb("VmHWM")),
              static_cast<unsigned long long>(status_kb("VmRSS")));
  std::printf("  swarm processes CPU: %.1f %% of one core in all\n",
              state.window_s > 0 ? 100.0 * state.children_cpu_s / state.window_s : 0.0);
  std::printf("  during the window: sessions lost %llu, HELLOs %llu\n", static_cast<unsigned long long>(state.lost),
              static_cast<unsigned long long>(state.hellos));
  std::printf("  sessions %llu, lost %llu, stale %llu, bad frames %llu, unknown session %llu, "
              "connect phase %.1f s\n",
              static_cast<unsigned long long>(stats.sessions), static_cast<unsigned long long>(stats.sessions_lost),
              static_cast<unsigned long long>(stats.reports_stale - state.stale_before),
              static_cast<unsigned long long>(stats.bad_frames),
              static_cast<unsigned long long>(stats.unknown_session),
              static_cast<double>(state.connect_ms) / 1000.0);
  std::printf("RESULT agents=%llu curve=%d processes=%zu reports_per_s=%.0f p50_us=%llu p99_us=%llu "
              "e2e_p50_us=%llu e2e_p99_us=%llu e2e_max_us=%llu lag_p99_ms=%llu cpu_pct=%.1f peak_rss_kb=%llu swarm_cpu_pct=%.1f lost_in_window=%llu complete=%d "
              "load=%s\n",
              static_cast<unsigned long long>(args.agents), args.curve ? 1 : 0, children.pids.size(), rate,
              static_cast<unsigned long long>(latency.quantile_us(0.5)),
              static_cast<unsigned long long>(latency.quantile_us(0.99)),
              static_cast<unsigned long long>(percentile(e2e, 0.5)),
              static_cast<unsigned long long>(percentile(e2e, 0.99)),
              static_cast<unsigned long long>(percentile(e2e, 1.0)),
              static_cast<unsigned long long>(percentile(lag.samples, 0.99)), cpu_pct,
              static_cast<unsigned long long>(status_kb("VmHWM")),
              state.window_s > 0 ? 100.0 * state.children_cpu_s / state.window_s : 0.0,
              static_cast<unsigned long long>(state.lost), state.complete ? 1 : 0, load_average().c_str());
  std::fflush(stdout);

  children.stop();
  g_children = nullptr;
  gateway->stop("bench done");
  gateway.reset();
  uv_timer_stop(&phase_timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&phase_timer), nullptr);
  uv_timer_stop(&lag.timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&lag.timer), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return state.complete ? 0 : 3;
}

// A handful of flags: parsed by hand (CLI11's inlined split() trips
// -Wnull-dereference in this translation unit under GCC 12 -O2).
bool parse_number(const char* text, std::uint64_t low, std::uint64_t high, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < low || value > high) return false;
  out = value;
  return true;
}

int usage(const char* message) {
  std::fprintf(stderr,
               "bench_ingest: %s\n"
               "usage: bench_ingest [--agents N (1000)] [--curve] [--seconds S (20)] "
               "[--per-process K (5000)] [--connect-timeout S (180)] [--liveness L (5)] [--connect-rate R (2000/s)]\n"
               "       [--zmtp-heartbeat-ms MS (gateway default; 0 = off)] [--verbose]\n",
               message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  BenchArgs bench;
  SwarmArgs swarm;
  bool is_swarm = false;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    const char* value = i + 1 < args.size() ? args[i + 1].c_str() : nullptr;
    auto number = [&](std::uint64_t low, std::uint64_t high, std::uint64_t& out) {
      if (value == nullptr || !parse_number(value, low, high, out)) return false;
      ++i;
      return true;
    };
    bool ok = true;
    if (flag == "--curve") {
      bench.curve = true;
    } else if (flag == "--verbose") {
      bench.verbose = true;
      swarm.verbose = true;
    } else if (flag == "--swarm") {
      is_swarm = true;
    } else if (flag == "--agents") {
      ok = number(1, 19'000, bench.agents);
    } else if (flag == "--seconds") {
      ok = number(1, 3600, bench.seconds);
    } else if (flag == "--per-process") {
      ok = number(1, 15'000, bench.per_process);
    } else if (flag == "--connect-rate") {
      ok = number(100, 100'000, bench.connect_rate);
    } else if (flag == "--zmtp-heartbeat-ms") {
      std::uint64_t ms = 0;
      ok = number(0, 60'000, ms);
      bench.zmtp_heartbeat_ms = ms;
    } else if (flag == "--liveness") {
      ok = number(1, 100, bench.liveness);
    } else if (flag == "--connect-timeout") {
      ok = number(1, 3600, bench.connect_timeout_s);
    } else if (flag == "--first") {  // the swarm's own flags (internal)
      ok = number(0, UINT32_MAX, swarm.first);
    } else if (flag == "--count") {
      ok = number(1, 15'000, swarm.count);
    } else if (flag == "--ramp") {
      ok = number(1, 1000, swarm.ramp);
    } else if (flag == "--deadline") {
      ok = number(1, 100'000, swarm.deadline_s);
    } else if ((flag == "--endpoint" || flag == "--server-key") && value != nullptr) {
      (flag == "--endpoint" ? swarm.endpoint : swarm.server_public_key) = value;
      ++i;
    } else {
      return usage(("unknown flag '" + flag + "'").c_str());
    }
    if (!ok) return usage(("bad or missing value for " + flag).c_str());
  }
  if (is_swarm) {
    if (swarm.endpoint.empty() || swarm.count == 0) return usage("--swarm needs --endpoint and --count");
    return run_swarm(swarm);
  }
  return run_bench(bench);
}
