// Notifier over real sockets on 127.0.0.1: a cpp-httplib server on its own
// thread receives the webhooks (port read back), a listening socket that
// never accepts plays a webhook that never answers, and a closed port one
// that refuses. Only the loop is the test's; nothing is faked.
#include "coordinator/io/notify/notifier.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "coordinator/core/notification.hpp"

using namespace std::chrono_literals;
using tide::coordinator::OutgoingNotification;
using tide::notify::DeliveryResult;
using tide::notify::Notifier;
using tide::notify::NotifierConfig;
using Clock = std::chrono::steady_clock;

namespace {

struct Received {
  std::string method;
  std::string path;
  std::string content_type;
  std::string body;
  Clock::time_point at;
};

// A webhook receiver; `answer` picks each response's status from the
// request's 0-based arrival index on that path.
class Receiver {
 public:
  explicit Receiver(std::function<int(const std::string& path, std::size_t index)> answer)
      : m_answer(std::move(answer)) {
    m_server.Post(R"(/.*)", [this](const httplib::Request& request, httplib::Response& response) {
      std::size_t index = 0;
      {
        std::lock_guard lock(m_mutex);
        index = static_cast<std::size_t>(
            std::count_if(m_received.begin(), m_received.end(),
                          [&](const Received& r) { return r.path == request.path; }));
        m_received.push_back({request.method, request.path,
                              request.get_header_value("Content-Type"), request.body,
                              Clock::now()});
      }
      response.status = m_answer(request.path, index);
      response.set_content("{}", "application/json");
    });
    const int port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    m_port = port;
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~Receiver() {
    m_server.stop();
    m_thread.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }
  [[nodiscard]] std::vector<Received> received() const {
    std::lock_guard lock(m_mutex);
    return m_received;
  }

 private:
  std::function<int(const std::string&, std::size_t)> m_answer;
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
  mutable std::mutex m_mutex;
  std::vector<Received> m_received;
};

// Listens but never accepts: the kernel completes the handshake, the request
// is sent, and no answer ever comes.
class SilentListener {
 public:
  SilentListener() {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(m_fd, 64) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(m_fd); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(m_port) + "/hook";
  }

 private:
  int m_fd = -1;
  int m_port = 0;
};

// A loopback port nobody listens on (bound, read back, then closed).
std::string refused_url() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/hook";
}

OutgoingNotification message(std::string url, std::string body = R"({"n":0})") {
  return {"test-target", std::move(url), "application/json", std::move(body)};
}

int count_handles(uv_loop_t* loop) {
  int count = 0;
  uv_walk(
      loop, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &count);
  return count;
}

// One loop per test; the destructor proves the test left nothing on it.
struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() {
    // Let close callbacks run, then the loop must be empty.
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i)
      std::this_thread::sleep_for(1ms);
    CHECK(count_handles(&loop) == 0);
    CHECK(uv_loop_close(&loop) == 0);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs the loop until `done` holds (checked every 2 ms) or `limit` passes.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    struct State {
      const std::function<bool()>* done;
      Clock::time_point deadline;
      bool met = false;
    } state{&done, Clock::now() + limit};
    uv_timer_t check{};
    uv_timer_init(&loop, &check);
    check.data = &state;
    uv_timer_start(
        &check,
        [](uv_timer_t* t) {
          auto* s = static_cast<State*>(t->data);
          s->met = (*s->done)();
          if (s->met || Clock::now() >= s->deadline) uv_stop(t->loop);
        },
        0, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return state.met;
  }
  // Runs the loop for `duration` whatever happens.
  void run_for(std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    (void)run_until([&] { return Clock::now() >= until; }, duration + 1s);
  }
};

NotifierConfig fast_config() {
  NotifierConfig config;
  config.request_timeout_ms = 2'000;
  config.connect_timeout_ms = 1'000;
  config.max_attempts = 3;
  config.initial_backoff_ms = 50;
  config.max_backoff_ms = 1'000;
  config.jitter = 0.1;
  return config;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

TEST_CASE("delivers generic and WeCom bodies with their content type", "[notify]") {
  Receiver receiver([](const std::string&, std::size_t) { return 200; });
  Loop loop;
  Notifier notifier(&loop.loop, fast_config(), 1);
  std::vector<DeliveryResult> results;
  notifier.on_result([&](const DeliveryResult& r) { results.push_back(r); });

  using namespace tide::coordinator;
  Activity activity;
  activity.id = "a-1";
  activity.group = "web";
  activity.type = ActivityType::ScaleOut;
  activity.status = ActivityStatus::Successful;
  activity.cause = "schedule lunch-peak: desired 2 -> 4";
  activity.start_ms = 1'714'532'400'000;
  activity.end_ms = 1'714'532'460'000;
  activity.instances = {{"i-1", "", true}, {"i-2", "", true}};
  std::vector<NotificationTarget> targets(2);
  targets[0] = {"web",
                "audit",
                receiver.url("/generic"),
                NotificationFormat::Generic,
                {NotificationEvent::ScaleOutSuccessful}};
  targets[1] = {"web",
                "ops",
                receiver.url("/cgi-bin/webhook/send?key=abc"),
                NotificationFormat::WeCom,
                {NotificationEvent::ScaleOutSuccessful}};
  const auto messages = notifications_for(activity, targets);
  REQUIRE(messages.size() == 2);
  notifier.send(messages);

  REQUIRE(loop.run_until([&] { return results.size() == 2; }));
  for (const auto& r : results) {
    CHECK(r.delivered);
    CHECK(r.attempts == 1);
    CHECK(r.http_status == 200);
  }
  const auto received = receiver.received();
  REQUIRE(received.size() == 2);
  std::map<std::string, Received> by_path;
  for (const auto& r : received) by_path[r.path] = r;
  REQUIRE(by_path.count("/generic") == 1);
  REQUIRE(by_path.count("/cgi-bin/webhook/send") == 1);
  const Received& generic = by_path["/generic"];
  CHECK(generic.method == "POST");
  CHECK(generic.content_type == "application/json");
  CHECK(generic.body == messages[0].body);
  const auto generic_json = nlohmann::json::parse(generic.body);
  CHECK(generic_json.at("event") == "scale_out_successful");
  CHECK(generic_json.at("activity_id") == "a-1");
  const Received& wecom = by_path["/cgi-bin/webhook/send"];
  CHECK(wecom.method == "POST");
  CHECK(wecom.content_type == "application/json");
  CHECK(wecom.body == messages[1].body);
  const auto wecom_json = nlohmann::json::parse(wecom.body);
  CHECK(wecom_json.at("msgtype") == "markdown");
  CHECK(wecom_json.at("markdown").at("content").get<std::string>().find("scale-out successful") !=
        std::string::npos);

  const auto stats = notifier.stats();
  CHECK(stats.sent == 2);
  CHECK(stats.failed == 0);
  CHECK(stats.retried == 0);
  CHECK(stats.in_flight == 0);
  CHECK(stats.pending == 0);
  notifier.close();
}

TEST_CASE("a body over 1 KiB is sent at once (no Expect: 100-continue wait)", "[notify]") {
  Receiver receiver([](const std::string&, std::size_t) { return 204; });
  Loop loop;
  Notifier notifier(&loop.loop, fast_config(), 1);
  const std::string big(64 * 1024, 'x');
  const auto start = Clock::now();
  notifier.send(message(receiver.url("/big"), big));
  REQUIRE(loop.run_until([&] { return notifier.stats().sent == 1; }));
  CHECK(ms_between(start, Clock::now()) < 500.0);
  REQUIRE(receiver.received().size() == 1);
  CHECK(receiver.received()[0].body == big);
  notifier.close();
}

TEST_CASE("5xx answers are retried with exponential back-off, then delivered", "[notify]") {
  // 500, 500, then 200.
  Receiver receiver([](const std::string&, std::size_t index) { return index < 2 ? 500 : 200; });
  Loop loop;
  NotifierConfig config = fast_config();
  config.max_attempts = 5;
  config.initial_backoff_ms = 100;
  config.jitter = 0.1;
  Notifier notifier(&loop.loop, config, 42);
  std::vector<DeliveryResult> results;
  notifier.on_result([&](const DeliveryResult& r) { results.push_back(r); });
  notifier.send(message(receiver.url("/flaky")));

  REQUIRE(loop.run_until([&] { return !results.empty(); }));
  REQUIRE(results.size() == 1);
  CHECK(results[0].delivered);
  CHECK(results[0].attempts == 3);
  const auto received = receiver.received();
  REQUIRE(received.size() == 3);
  const double first_gap = ms_between(received[0].at, received[1].at);
  const double second_gap = ms_between(received[1].at, received[2].at);
  INFO("gaps " << first_gap << " ms, " << second_gap << " ms");
  // 100 ms then 200 ms, each within +-10 % jitter; slack above for a busy machine.
  CHECK(first_gap >= 85.0);
  CHECK(first_gap < 400.0);
  CHECK(second_gap >= 175.0);
  CHECK(second_gap < 600.0);
  CHECK(second_gap > first_gap);
  const auto stats = notifier.stats();
  CHECK(stats.sent == 1);
  CHECK(stats.retried == 2);
  CHECK(stats.failed == 0);
  notifier.close();
}

TEST_CASE("gives up after max_attempts and counts one failure", "[notify]") {
  const int status = GENERATE(503, 429);
  Receiver receiver([status](const std::string&, std::size_t) { return status; });
  Loop loop;
  NotifierConfig config = fast_config();
  config.max_attempts = 3;
  config.initial_backoff_ms = 20;
  Notifier notifier(&loop.loop, config, 7);
  std::vector<DeliveryResult> results;
  notifier.on_result([&](const DeliveryResult& r) { results.push_back(r); });
  notifier.send(message(receiver.url("/down")));

  REQUIRE(loop.run_until([&] { return !results.empty(); }));
  loop.run_for(150ms);  // no further attempt may follow
  INFO("status " << status);
  CHECK(receiver.received().size() == 3);
  REQUIRE(results.size() == 1);
  CHECK_FALSE(results[0].delivered);
  CHECK(results[0].attempts == 3);
  CHECK(results[0].http_status == status);
  CHECK(results[0].error == "HTTP " + std::to_string(status));
  const auto stats = notifier.stats();
  CHECK(stats.sent == 0);
  CHECK(stats.failed == 1);
  CHECK(stats.retried == 2);
  notifier.close();
}

TEST_CASE("a 4xx other than 429 is not retried", "[notify]") {
  const int status = GENERATE(400, 404);
  Receiver receiver([status](const std::string&, std::size_t) { return status; });
  Loop loop;
  NotifierConfig config = fast_config();
  config.initial_backoff_ms = 20;
  Notifier notifier(&loop.loop, config, 7);
  std::vector<DeliveryResult> results;
  notifier.on_result([&](const DeliveryResult& r) { results.push_back(r); });
  notifier.send(message(receiver.url("/gone")));

  REQUIRE(loop.run_until([&] { return !results.empty(); }));
  loop.run_for(200ms);  // ten back-offs' worth: a retry would have come
  CHECK(receiver.received().size() == 1);
  REQUIRE(results.size() == 1);
  CHECK_FALSE(results[0].delivered);
  CHECK(results[0].attempts == 1);
  const auto stats = notifier.stats();
  CHECK(stats.failed == 1);
  CHECK(stats.retried == 0);
  notifier.close();
}

TEST_CASE("a silent webhook times out, a refused one fails, and the loop's timers keep time",
          "[notify]") {
  SilentListener silent;
  const std::string refused = refused_url();
  Loop loop;
  NotifierConfig config = fast_config();
  config.request_timeout_ms = 300;
  config.max_attempts = 2;
  config.initial_backoff_ms = 50;
  Notifier notifier(&loop.loop, config, 3);

  // A 10 ms control-loop tick on the same loop; record how late it fires.
  struct Tick {
    std::uint64_t last_ns = 0;
    double worst_late_ms = 0.0;
    int fired = 0;
  } tick;
  uv_timer_t ticker{};
  uv_timer_init(&loop.loop, &ticker);
  ticker.data = &tick;
  tick.last_ns = uv_hrtime();
  uv_timer_start(
      &ticker,
      [](uv_timer_t* t) {
        auto* state = static_cast<Tick*>(t->data);
        const std::uint64_t now = uv_hrtime();
        const double late = static_cast<double>(now - state->last_ns) / 1e6 - 10.0;
        state->worst_late_ms = std::max(state->worst_late_ms, late);
        state->last_ns = now;
        ++state->fired;
      },
      10, 10);

  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) notifier.send(message(silent.url()));
  for (int i = 0; i < 5; ++i) notifier.send(message(refused));
  const double send_ms = ms_between(start, Clock::now());
  REQUIRE(loop.run_until([&] { return notifier.stats().failed == 10; }, 10s));
  uv_close(reinterpret_cast<uv_handle_t*>(&ticker), nullptr);

  const auto stats = notifier.stats();
  INFO("worst tick lateness " << tick.worst_late_ms << " ms over " << tick.fired
                              << " ticks; send() took " << send_ms << " ms");
  CHECK(stats.timeouts == 10);  // 5 silent messages x 2 attempts
  CHECK(stats.failed == 10);
  CHECK(stats.retried == 10);
  CHECK(stats.sent == 0);
  CHECK(tick.fired >= 30);  // the run lasted >= 2 x 300 ms + back-off
  // A blocking request would hold the loop for its 300 ms time-out.
  CHECK(tick.worst_late_ms < 50.0);
  CHECK(send_ms < 50.0);
  notifier.close();
}

TEST_CASE("a full queue drops the oldest waiting message", "[notify]") {
  SilentListener silent;
  Receiver receiver([](const std::string&, std::size_t) { return 200; });
  Loop loop;
  NotifierConfig config = fast_config();
  config.max_in_flight = 1;
  config.max_pending = 3;
  config.max_attempts = 1;
  config.request_timeout_ms = 200;
  Notifier notifier(&loop.loop, config, 5);

  // m0 occupies the only request slot (no answer), m1..m5 wait: m1 and m2
  // are the oldest when the queue overflows.
  notifier.send(message(silent.url(), R"({"n":0})"));
  for (int i = 1; i <= 5; ++i)
    notifier.send(message(receiver.url("/q"), "{\"n\":" + std::to_string(i) + "}"));
  CHECK(notifier.stats().dropped == 2);
  CHECK(notifier.stats().pending == 3);
  CHECK(notifier.stats().in_flight == 1);

  REQUIRE(loop.run_until([&] { return notifier.stats().sent == 3; }));
  const auto received = receiver.received();
  REQUIRE(received.size() == 3);
  CHECK(received[0].body == R"({"n":3})");
  CHECK(received[1].body == R"({"n":4})");
  CHECK(received[2].body == R"({"n":5})");
  const auto stats = notifier.stats();
  CHECK(stats.failed == 1);  // m0 timed out
  CHECK(stats.timeouts == 1);
  CHECK(stats.dropped == 2);
  notifier.close();
}

TEST_CASE("close() with requests in flight and retries waiting leaves nothing on the loop",
          "[notify]") {
  SilentListener silent;
  Receiver receiver([](const std::string&, std::size_t) { return 500; });
  Loop loop;
  NotifierConfig config = fast_config();
  config.request_timeout_ms = 5'000;
  config.initial_backoff_ms = 10'000;  // the retry would wait long after close
  config.max_backoff_ms = 10'000;
  auto notifier = std::make_unique<Notifier>(&loop.loop, config, 9);
  for (int i = 0; i < 3; ++i) notifier->send(message(silent.url()));
  notifier->send(message(receiver.url("/retry-later")));
  REQUIRE(loop.run_until([&] { return notifier->stats().retried == 1; }));
  CHECK(notifier->stats().in_flight == 3);
  CHECK(notifier->stats().pending == 1);
  CHECK(count_handles(&loop.loop) > 0);

  notifier->close();
  CHECK(notifier->stats().in_flight == 0);
  CHECK(notifier->stats().pending == 0);
  notifier->send(message(receiver.url("/after-close")));
  CHECK(notifier->stats().dropped == 1);
  notifier.reset();

  // The loop ends by itself: nothing of the notifier's keeps it alive.
  const auto start = Clock::now();
  CHECK(uv_run(&loop.loop, UV_RUN_DEFAULT) == 0);
  CHECK(ms_between(start, Clock::now()) < 100.0);
  CHECK(count_handles(&loop.loop) == 0);
  CHECK(receiver.received().size() == 1);  // the /after-close message never left
}

TEST_CASE("bad URLs are counted failures, not exceptions", "[notify]") {
  Loop loop;
  Notifier notifier(&loop.loop, fast_config(), 1);
  std::vector<DeliveryResult> results;
  notifier.on_result([&](const DeliveryResult& r) { results.push_back(r); });
  notifier.send(message(""));
  notifier.send(message("ftp://127.0.0.1/x"));
  notifier.send(message("http://[::1"));
  REQUIRE(loop.run_until([&] { return results.size() == 3; }));
  for (const auto& r : results) {
    CHECK_FALSE(r.delivered);
    CHECK(r.attempts == 1);  // not retried: no retry can fix a URL
    CHECK_FALSE(r.error.empty());
  }
  CHECK(notifier.stats().failed == 3);
  CHECK(notifier.stats().retried == 0);
  notifier.close();
}
