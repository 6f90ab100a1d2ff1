// bench_ingest: can one coordinator take 10,000 agents at 1 REPORT/s each?
//
// The bench process runs one AgentGateway (the real one, on a libuv loop)
// with a handler that accepts every HELLO and, per REPORT, updates an entry
// of a hash map keyed by instance id (about what the control loop's fast path
// does). The agents are simulated in child processes (fork + exec of this
// binary with --swarm), --per-process agents each, because every DEALER costs
// file descriptors and the hard limit per process is 20,000. Each simulated
// agent is its own transport::Dealer (its own TCP connection, CURVE key pair
// when --curve), says HELLO, then sends one REPORT per second, the agents'
// phases spread over the second.
//
// Once every agent has a session (plus a short settling time), the bench
// measures over --seconds: REPORTs/s received, the gateway's p50/p99 report
// processing latency (AgentGateway::report_latency(): decode + handler), the
// loop's timer lag (how long a frame can wait before it is processed), and
// this process's CPU % (of one core, /proc/self/stat) and peak RSS (VmHWM,
// /proc/self/status). Children get SIGTERM at the end, SIGKILL if they
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
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>
#include <zmq.hpp>

#include "coordinator/io/server/agent_gateway.hpp"
#include "protocol/codec.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/curve.hpp"
#include "protocol/transport/dealer.hpp"

namespace proto = tide::protocol;
namespace tx = tide::transport;
using tide::coordinator::AgentGateway;
using tide::coordinator::AgentGatewayHandler;
using tide::coordinator::GatewayConfig;
using tide::coordinator::HelloVerdict;

namespace {

constexpr std::uint32_t kReportIntervalMs = 1000;

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

// ---- the swarm (child process) -------------------------------------------------

struct SimAgent {
  std::string instance_id;
  std::unique_ptr<tx::Dealer> dealer;
  bool connected = false;     // connect() called
  bool welcomed = false;
  bool hello_due = true;
  bool schedule_first = false;  // welcomed: pick a random phase on the next tick
  std::uint64_t seq = 0;
  std::uint64_t next_report_ms = 0;
  std::uint64_t next_hello_ms = 0;
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
  report.timestamp_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  report.ready = true;
  report.ready_reason = "probes passing";
  report.healthy = true;
  report.probes.push_back(proto::ProbeResult{"http", proto::ProbeKind::Http, true, "", 2});
  report.metrics.cpu_pct = static_cast<double>(random() % 10'000) / 100.0;
  report.metrics.memory_pct = 42.0;
  report.metrics.load1 = 0.5;
  report.metrics.tcp_established = static_cast<std::uint32_t>(random() % 500);
  return proto::encode(proto::Message{report});
}

int run_swarm(const SwarmArgs& args) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the bench
  if (::getppid() == 1) return 1;
  raise_fd_limit();

  uv_loop_t loop;
  uv_loop_init(&loop);
  zmq::context_t context(1);
  // ZMQ_MAX_SOCKETS defaults to 1023 per context.
  context.set(zmq::ctxopt::max_sockets, static_cast<int>(args.count + 64));

  std::mt19937_64 random(args.first * 7919 + 17);
  std::vector<SimAgent> agents(args.count);
  const std::uint64_t start_ms = uv_now(&loop);
  for (std::uint64_t i = 0; i < args.count; ++i) {
    SimAgent& agent = agents[i];
    agent.instance_id = instance_name(args.first + i);
    tx::DealerOptions options;
    options.endpoint = args.endpoint;
    options.routing_id = tx::agent_routing_id(agent.instance_id);
    options.monitor_events = false;  // two file descriptors fewer per agent
    if (!args.server_public_key.empty()) {
      auto keys = tx::generate_curve_keypair();
      if (!keys) {
        std::fprintf(stderr, "swarm: key generation failed: %s\n", keys.error().detail.c_str());
        return 1;
      }
      options.curve = tx::DealerCurve{args.server_public_key, *keys};
    }
    agent.dealer = std::make_unique<tx::Dealer>(&loop, context, options);
    agent.dealer->on_message([&agent](std::span<const std::uint8_t> frame) {
      auto message = proto::decode(frame);
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
        }
      } else if (std::holds_alternative<proto::Goodbye>(*message)) {
        agent.welcomed = false;
        agent.hello_due = true;
      }
    });
    // Connect in batches (in the tick) so that the listen backlog keeps up.
    agent.next_hello_ms = start_ms;
  }

  struct Ticker {
    const SwarmArgs* args;
    std::vector<SimAgent>* agents;
    std::mt19937_64* random;
    std::uint64_t start_ms;
    std::uint64_t next_connect = 0;
    std::uint64_t failures = 0;
    // Diagnostics, printed every 5 s when --verbose: why agents lack a session.
    std::uint64_t hello_sent = 0;
    std::uint64_t hello_blocked = 0;   // WouldBlock: no connection up yet (IMMEDIATE)
    std::uint64_t report_sent = 0;
    std::uint64_t report_failed = 0;
    std::uint64_t last_print_ms = 0;
  } ticker{&args, &agents, &random, start_ms};

  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = &ticker;
  uv_timer_start(
      &timer,
      [](uv_timer_t* handle) {
        auto& t = *static_cast<Ticker*>(handle->data);
        const std::uint64_t now = uv_now(handle->loop);
        if (now - t.start_ms > t.args->deadline_s * 1000) {
          uv_stop(handle->loop);
          return;
        }
        // A bounded connection ramp: the listen backlog is ZeroMQ's default
        // 100, and a dropped SYN costs its agent seconds of TCP back-off.
        for (std::uint64_t n = 0; n < t.args->ramp && t.next_connect < t.agents->size();
             ++n, ++t.next_connect) {
          SimAgent& agent = (*t.agents)[t.next_connect];
          if (!agent.dealer->connect()) ++t.failures;
          agent.connected = true;
        }
        for (SimAgent& agent : *t.agents) {
          if (!agent.connected) break;
          if (agent.hello_due) {
            if (now < agent.next_hello_ms) continue;
            proto::Hello hello;
            hello.instance_id = agent.instance_id;
            hello.enrollment_token = "bench";
            hello.agent_version = "0.1.0";
            hello.hostname = "swarm";
            hello.service_address = "127.0.0.1";
            hello.service_port = 8080;
            hello.capabilities = {"drain"};
            // Fails (WouldBlock) until the connection is up; retried every 50 ms,
            // and every 2 s once sent in case the answer was lost.
            const bool sent = agent.dealer->send(proto::encode(proto::Message{hello})).has_value();
            ++(sent ? t.hello_sent : t.hello_blocked);
            agent.next_hello_ms = now + (sent ? 2000 : 50);
            continue;
          }
          if (!agent.welcomed) continue;
          if (agent.schedule_first) {
            // Phases spread over the interval so the fleet does not report in lock-step.
            agent.schedule_first = false;
            agent.next_report_ms = now + (*t.random)() % kReportIntervalMs;
          }
          if (now < agent.next_report_ms) continue;
          ++(agent.dealer->send(encode_report(++agent.seq, *t.random)) ? t.report_sent : t.report_failed);
          agent.next_report_ms += kReportIntervalMs;
          if (agent.next_report_ms < now) agent.next_report_ms = now + kReportIntervalMs;
        }
        if (t.args->verbose && now - t.last_print_ms >= 5000) {
          t.last_print_ms = now;
          std::uint64_t welcomed = 0;
          for (const SimAgent& agent : *t.agents) welcomed += agent.welcomed ? 1 : 0;
          std::fprintf(stderr,
                       "swarm %llu: t=%llu s connected %llu welcomed %llu | last 5 s: HELLO sent %llu blocked %llu, "
                       "REPORT sent %llu failed %llu\n",
                       static_cast<unsigned long long>(t.args->first),
                       static_cast<unsigned long long>((now - t.start_ms) / 1000),
                       static_cast<unsigned long long>(t.next_connect), static_cast<unsigned long long>(welcomed),
                       static_cast<unsigned long long>(t.hello_sent), static_cast<unsigned long long>(t.hello_blocked),
                       static_cast<unsigned long long>(t.report_sent),
                       static_cast<unsigned long long>(t.report_failed));
          t.hello_sent = t.hello_blocked = t.report_sent = t.report_failed = 0;
        }
      },
      10, 10);

  uv_run(&loop, UV_RUN_DEFAULT);
  uv_timer_stop(&timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  for (auto& agent : agents) agent.dealer->close();
  uv_run(&loop, UV_RUN_DEFAULT);
  agents.clear();
  uv_loop_close(&loop);
  return 0;
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
  }
  void on_lost(const std::string&, std::string_view) override { ++lost; }
  void on_ack(const std::string&, std::uint64_t) override {}
  void on_hook_result(const std::string&, const proto::HookResult&) override {}

  std::uint64_t lost = 0;

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
  std::uint64_t per_process = 1000;
  std::uint64_t connect_timeout_s = 180;
  std::uint64_t liveness = 5;
  std::uint64_t connect_rate = 2000;  // new connections per second, all swarm processes together
  bool verbose = false;
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
  std::printf("bench_ingest: %llu agents in %zu processes, CURVE %s, gateway on %s\n",
              static_cast<unsigned long long>(args.agents), children.pids.size(), args.curve ? "on" : "off",
              endpoint->c_str());
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
              "lag_p99_ms=%llu cpu_pct=%.1f peak_rss_kb=%llu swarm_cpu_pct=%.1f lost_in_window=%llu complete=%d "
              "load=%s\n",
              static_cast<unsigned long long>(args.agents), args.curve ? 1 : 0, children.pids.size(), rate,
              static_cast<unsigned long long>(latency.quantile_us(0.5)),
              static_cast<unsigned long long>(latency.quantile_us(0.99)),
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
               "[--per-process K (1000)] [--connect-timeout S (180)] [--liveness L (5)] [--connect-rate R (2000/s)] [--verbose]\n",
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
      ok = number(1, 5000, bench.per_process);
    } else if (flag == "--connect-rate") {
      ok = number(100, 100'000, bench.connect_rate);
    } else if (flag == "--liveness") {
      ok = number(1, 100, bench.liveness);
    } else if (flag == "--connect-timeout") {
      ok = number(1, 3600, bench.connect_timeout_s);
    } else if (flag == "--first") {  // the swarm's own flags (internal)
      ok = number(0, UINT32_MAX, swarm.first);
    } else if (flag == "--count") {
      ok = number(1, 5000, swarm.count);
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
