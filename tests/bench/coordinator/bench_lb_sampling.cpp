// bench_lb_sampling: what the load balancer's metrics cost the coordinator
// and HAProxy at 2,000 servers in one backend (target: <= 2 % of one core).
//
// A real HAProxy, started by an embedded LoadBalancer from the configuration
// tide renders, with backend "web" of --servers slots; the bench places an
// instance in every slot through the Driver (distinct loopback addresses,
// port 9: nothing listens, and the slots have no health checks, so every row
// of `show stat` is a full server row). Then, every second for --seconds,
// exactly what the coordinator's Server::sample_traffic runs:
// LoadBalancer::sample_traffic (`show stat -1 4 -1` over the runtime API,
// parse_show_stat, member_traffic), the InstanceTraffic of each server,
// LbRates::update, and MetricWindows::record of the five metrics.
//
// Measured over the sampling phase: this process's CPU (getrusage; the loop
// thread is the only busy one) and HAProxy's (utime + stime of its processes
// from /proc/<pid>/stat), each as % of one core; wall time from the request
// to the parsed answer; the answer's size. Then a breakdown, --repeat times
// each on the thread's CPU clock: reading the answer (this side only:
// HAProxy writes it while the loop waits), parse_show_stat, member_traffic,
// and rates + record.
//
// Usage: bench_lb_sampling [--servers N] [--seconds S] [--repeat R]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <uv.h>

#include "coordinator/core/lb_metrics.hpp"
#include "coordinator/core/metrics.hpp"
#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/load_balancer.hpp"
#include "coordinator/io/haproxy/runtime_client.hpp"
#include "coordinator/io/haproxy/runtime_text.hpp"
#include "coordinator/io/haproxy/traffic.hpp"

namespace fs = std::filesystem;
using namespace tide::coordinator;
using namespace tide::haproxy;
using Clock = std::chrono::steady_clock;

namespace {

using Sample = tl::expected<std::vector<ServerTraffic>, std::string>;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench_lb_sampling: %s\n", why.c_str());
  std::exit(1);
}

double cpu_s(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

double process_cpu_s() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return cpu_s(r);
}

double thread_cpu_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    die("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// The whole of a small file (/proc entries report a size of 0, so read to the end).
std::string read_file(const fs::path& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char chunk[4096];
  for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) out.append(chunk, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// Processes whose command line names `config` (HAProxy's master and worker).
std::vector<pid_t> processes_running(const std::string& config) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (read_file(entry.path() / "cmdline").find(config) != std::string::npos) pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

// utime + stime of `pids` in seconds (/proc/<pid>/stat fields 14 and 15,
// counted after the parenthesised command name, which may hold spaces).
double cpu_of(const std::vector<pid_t>& pids) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double total = 0.0;
  for (const pid_t pid : pids) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int k = 3; k <= 15 && fields >> field; ++k) {
      if (k == 14) utime = std::stoull(field);
      if (k == 15) stime = std::stoull(field);
    }
    total += static_cast<double>(utime + stime) / ticks;
  }
  return total;
}

// Runs the loop until pred() or the deadline (set-up only: the 5 ms wake-up
// timer would be noise in the measured phase).
bool run_until(uv_loop_t* loop, const std::function<bool()>& pred, int timeout_ms) {
  uv_timer_t wake;
  uv_timer_init(loop, &wake);
  uv_timer_start(&wake, [](uv_timer_t*) {}, 5, 5);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred() && Clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return pred();
}

// What Server::sample_traffic hands the core for each server.
std::vector<InstanceTraffic> to_instance_traffic(const std::vector<ServerTraffic>& sample) {
  std::vector<InstanceTraffic> servers;
  servers.reserve(sample.size());
  for (const ServerTraffic& server : sample) {
    InstanceTraffic traffic;
    traffic.instance_id = server.instance_id;
    traffic.cumulative.requests = server.requests_total != 0 ? server.requests_total : server.sessions_total;
    traffic.cumulative.errors_5xx = server.responses_5xx;
    traffic.cumulative.connection_errors = server.connection_errors + server.response_errors;
    traffic.cumulative.mean_response_ms = server.mean_response_ms;
    traffic.queue = server.queue;
    traffic.sessions = server.current_sessions;
    servers.push_back(std::move(traffic));
  }
  return servers;
}

// The rates of one sample into the group's windows (Server::record_lb_metrics
// without the eligibility look-ups: every instance here counts).
void record(LbRates& rates, MetricWindows& windows, const std::vector<InstanceTraffic>& servers, TimeMs now) {
  for (const LbInstanceValues& values : rates.update(servers, now)) {
    std::vector<MetricSample> samples{{kMetricRequestsPerInstance, values.requests_per_s},
                                      {kMetricHttp5xxRate, values.errors_5xx_per_s},
                                      {kMetricQueue, values.queue},
                                      {kMetricSessionsPerInstance, values.sessions}};
    if (values.response_time_ms) samples.push_back({kMetricResponseTime, *values.response_time_ms});
    windows.record("web", values.instance_id, now, samples);
  }
}

TimeMs unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

double maximum(const std::vector<double>& values) {
  return values.empty() ? 0.0 : *std::max_element(values.begin(), values.end());
}

// The sampling phase: one sample a second, as the coordinator's timer does
// (a sample still in flight when the next second comes is not overlapped).
struct SamplingRun {
  LoadBalancer* lb = nullptr;
  int wanted = 0;
  int taken = 0;
  int failed = 0;
  bool in_flight = false;
  std::size_t rows = 0;
  Clock::time_point sent;
  std::vector<double> wall_ms;  // request → parsed sample
  LbRates rates;
  MetricWindows windows;
  uv_timer_t timer{};

  static void on_timer(uv_timer_t* t) {
    auto* self = static_cast<SamplingRun*>(t->data);
    if (self->in_flight) return;
    self->in_flight = true;
    self->sent = Clock::now();
    self->lb->sample_traffic([self](Sample sample) { self->done(std::move(sample)); });
  }

  void done(Sample sample) {
    in_flight = false;
    wall_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    if (sample) {
      rows = sample->size();
      record(rates, windows, to_instance_traffic(*sample), unix_now_ms());
    } else {
      ++failed;
      std::fprintf(stderr, "sample failed: %s\n", sample.error().c_str());
    }
    if (++taken == wanted) uv_timer_stop(&timer);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t servers = 2'000;
  int seconds = 60;
  int repeat = 50;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    const bool has_value = k + 1 < argc;
    if (arg == "--servers" && has_value) servers = static_cast<std::uint32_t>(std::atoi(argv[++k]));
    else if (arg == "--seconds" && has_value) seconds = std::atoi(argv[++k]);
    else if (arg == "--repeat" && has_value) repeat = std::atoi(argv[++k]);
    else {
      std::fprintf(stderr, "usage: bench_lb_sampling [--servers N] [--seconds S] [--repeat R]\n");
      return 2;
    }
  }
  if (servers < 1 || servers > 4'096 || seconds < 1 || repeat < 1) {
    std::fprintf(stderr, "bench_lb_sampling: servers 1..4096 (a backend's slot limit), seconds and repeat >= 1\n");
    return 2;
  }

  char dir_template[] = "/tmp/tide-bench-lb-sampling-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) die("cannot create a temporary directory");
  const fs::path dir = dir_template;
  uv_loop_t loop;
  uv_loop_init(&loop);

  LoadBalancer::Options options;
  options.embedded = true;
  options.socket_path = (dir / "admin.sock").string();
  options.pid_file = (dir / "haproxy.pid").string();
  options.config_path = (dir / "haproxy.cfg").string();
  options.backends.push_back(BackendSpec{.name = "web", .bind_port = free_port(), .slot_count = servers});
  // The periodic reconcile (`show servers state`, every 5 s by default) is
  // another cost than the one measured here.
  options.reconcile_interval_ms = 3'600'000;
  options.digest = [](std::string_view text) { return std::to_string(std::hash<std::string_view>{}(text)); };
  auto lb = std::make_unique<LoadBalancer>(&loop, options);
  const auto stop_haproxy = [&] {
    bool stopped = false;
    lb->stop([&] { stopped = true; });
    run_until(&loop, [&] { return stopped; }, 10'000);
    lb.reset();
  };
  if (auto started = lb->start(); !started) die("HAProxy did not start: " + started.error());
  lb->fleet_restored();

  // HAProxy's runtime socket appears shortly after the start.
  bool answered = false;
  run_until(&loop, [&] {
    if (answered) return true;
    std::optional<Sample> sample;
    lb->sample_traffic([&](Sample s) { sample = std::move(s); });
    run_until(&loop, [&] { return sample.has_value(); }, 5'000);
    answered = sample && *sample;
    return answered;
  }, 20'000);
  if (!answered) {
    stop_haproxy();
    die("HAProxy's runtime API did not answer");
  }

  // An instance in every slot.
  const auto placing = Clock::now();
  std::uint32_t placed = 0, refused = 0;
  for (std::uint32_t i = 0; i < servers; ++i) {
    const std::string address = "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    lb->driver().register_instance("web", "i-" + std::to_string(i), address, 9,
                                   [&](tl::expected<OpResult, DriverError> r) { r ? ++placed : ++refused; });
  }
  run_until(&loop, [&] { return placed + refused == servers; }, 300'000);
  if (placed != servers) {
    stop_haproxy();
    die("placed " + std::to_string(placed) + " of " + std::to_string(servers) + " instances");
  }
  std::printf("bench_lb_sampling: %u servers placed in %.1f s; load average %s", servers, seconds_since(placing),
              read_file("/proc/loadavg").c_str());

  const std::vector<pid_t> haproxy = processes_running(options.config_path);
  if (haproxy.empty()) die("no HAProxy process runs " + options.config_path);

  // The sampling phase.
  SamplingRun run;
  run.lb = lb.get();
  run.wanted = seconds;
  uv_timer_init(&loop, &run.timer);
  run.timer.data = &run;
  const double haproxy_before = cpu_of(haproxy);
  const double self_before = process_cpu_s();
  const auto started = Clock::now();
  uv_timer_start(&run.timer, &SamplingRun::on_timer, 1'000, 1'000);
  while (run.taken < run.wanted) uv_run(&loop, UV_RUN_ONCE);
  const double span_s = seconds_since(started);
  const double self_s = process_cpu_s() - self_before;
  const double haproxy_s = cpu_of(haproxy) - haproxy_before;
  uv_close(reinterpret_cast<uv_handle_t*>(&run.timer), nullptr);
  uv_run(&loop, UV_RUN_NOWAIT);

  std::printf("sampling: %d samples (%d failed) of %zu servers in %.1f s\n", run.taken, run.failed, run.rows, span_s);
  std::printf("  coordinator side: %.3f s CPU = %.3f %% of one core (%.2f ms per sample)\n", self_s,
              100.0 * self_s / span_s, 1e3 * self_s / run.taken);
  std::printf("  HAProxy answering: %.3f s CPU = %.3f %% of one core (%.2f ms per sample; clock ticks of 10 ms)\n",
              haproxy_s, 100.0 * haproxy_s / span_s, 1e3 * haproxy_s / run.taken);
  std::printf("  request -> parsed sample: median %.2f ms, max %.2f ms\n", median(run.wall_ms), maximum(run.wall_ms));

  // The breakdown, on the raw answer of a client of our own.
  RuntimeClient client(&loop, RuntimeClient::Options{.endpoint = options.socket_path, .command_timeout_ms = 5'000});
  std::vector<double> read_ms, parse_ms, members_ms, rates_ms;
  std::string text;
  std::vector<StatRow> rows;
  std::vector<ServerTraffic> traffic;
  const std::vector<BackendMembers> members{BackendMembers{"web", "s", lb->driver().assignment("web")}};
  LbRates rates;
  MetricWindows windows;
  TimeMs now = unix_now_ms();
  for (int k = 0; k < repeat; ++k) {
    std::optional<RuntimeClient::Answer> answer;
    const double before_read = thread_cpu_ms();
    client.send("show stat -1 4 -1", [&](RuntimeClient::Answer a) { answer = std::move(a); });
    while (!answer) uv_run(&loop, UV_RUN_ONCE);
    read_ms.push_back(thread_cpu_ms() - before_read);
    if (!*answer) die("show stat: " + answer->error().detail);
    text = std::move(**answer);

    const double before_parse = thread_cpu_ms();
    auto parsed = parse_show_stat(text);
    parse_ms.push_back(thread_cpu_ms() - before_parse);
    if (!parsed) die("show stat: " + parsed.error());
    rows = std::move(*parsed);

    const double before_members = thread_cpu_ms();
    traffic = member_traffic(rows, members);
    members_ms.push_back(thread_cpu_ms() - before_members);

    now += 1'000;
    const double before_rates = thread_cpu_ms();
    record(rates, windows, to_instance_traffic(traffic), now);
    rates_ms.push_back(thread_cpu_ms() - before_rates);
  }
  client.close();
  std::printf("breakdown over %d answers of %zu bytes, %zu rows (CPU of this thread, median / max ms):\n", repeat,
              text.size(), rows.size());
  std::printf("  read the answer     %6.3f / %6.3f\n", median(read_ms), maximum(read_ms));
  std::printf("  parse_show_stat     %6.3f / %6.3f\n", median(parse_ms), maximum(parse_ms));
  std::printf("  member_traffic      %6.3f / %6.3f\n", median(members_ms), maximum(members_ms));
  std::printf("  rates + record      %6.3f / %6.3f\n", median(rates_ms), maximum(rates_ms));
  std::printf("RESULT {\"servers\": %zu, \"samples\": %d, \"failed\": %d, \"coordinator_cpu_pct\": %.3f, "
              "\"haproxy_cpu_pct\": %.3f, \"answer_bytes\": %zu, \"read_ms\": %.3f, \"parse_ms\": %.3f, "
              "\"member_traffic_ms\": %.3f, \"rates_record_ms\": %.3f}\n",
              run.rows, run.taken, run.failed, 100.0 * self_s / span_s, 100.0 * haproxy_s / span_s, text.size(),
              median(read_ms), median(parse_ms), median(members_ms), median(rates_ms));

  stop_haproxy();
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return run.failed == 0 ? 0 : 1;
}
