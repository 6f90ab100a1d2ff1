// The admin API's HTTP server against clients that misbehave: slow
// and idle connections must not delay anyone else, bad framing is answered at
// once, pipelined requests are all answered in order. A real HttpApi on a
// real loop; real TCP connections on 127.0.0.1. The latency bounds here are
// generous (a busy 2-core CI machine): they tell "answered" from "waited for
// the slow clients' time-outs" (10 s with the old worker-pool server); the
// latency targets are measured by tests/bench/coordinator/bench_api_slowloris.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/integration/coordinator/server/http_api_fixture.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;
using namespace std::chrono_literals;

namespace {

const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

// Raises the descriptor limit to its hard limit: `n` connections need 2n
// descriptors here (client and server side).
void need_descriptors(std::size_t n) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  REQUIRE(limit.rlim_cur >= 2 * n + 100);
}

std::chrono::milliseconds elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

}  // namespace

TEST_CASE("500 slow and idle connections do not hold up a legitimate request", "[http]") {
  need_descriptors(520);
  HttpApiFixture api;
  REQUIRE(api.start_error().empty());
  std::vector<int> slow;
  // 250 slowloris connections (a request line and one header, then silence)
  // and 250 that connect and send nothing.
  for (int k = 0; k < 500; ++k) {
    const int fd = connect_to(api.port());
    REQUIRE(fd >= 0);
    if (k % 2 == 0) REQUIRE(send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "));
    slow.push_back(fd);
  }
  std::vector<std::chrono::milliseconds> latencies;
  for (int k = 0; k < 20; ++k) {
    const auto start = std::chrono::steady_clock::now();
    const std::string answer = exchange(api.port(), kHealthz, 10s);
    latencies.push_back(elapsed_since(start));
    REQUIRE(first_status(answer) == 200);
    // The slow ones keep trickling.
    if (k % 5 == 0) {
      for (std::size_t s = 0; s < slow.size(); s += 2) (void)send_all(slow[s], "a");
    }
  }
  std::sort(latencies.begin(), latencies.end());
  INFO("median " << latencies[latencies.size() / 2].count() << " ms, worst " << latencies.back().count() << " ms");
  CHECK(latencies.back() < 3s);
  for (const int fd : slow) ::close(fd);
}

TEST_CASE("pipelined requests are all answered, in order", "[http]") {
  HttpApiFixture api;
  REQUIRE(api.start_error().empty());
  const int fd = connect_to(api.port());
  REQUIRE(fd >= 0);
  const std::string echo_a = R"({"n":1})";
  const std::string echo_b = R"({"n":2})";
  REQUIRE(send_all(fd, kHealthz +
                           "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(echo_a.size()) +
                           "\r\n\r\n" + echo_a + kHealthz + "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                           std::to_string(echo_b.size()) + "\r\n\r\n" + echo_b));
  const std::string answers = read_until(fd, 10s, [](const std::string& t) { return complete_responses(t) >= 4; });
  ::close(fd);
  REQUIRE(complete_responses(answers) == 4);
  const auto first_n = answers.find(R"("n":1)");
  const auto second_n = answers.find(R"("n":2)");
  REQUIRE(first_n != std::string::npos);
  REQUIRE(second_n != std::string::npos);
  CHECK(first_n < second_n);
}

TEST_CASE("bad framing is answered at once", "[http]") {
  HttpApiFixture api;
  REQUIRE(api.start_error().empty());
  SECTION("a negative Content-Length") {
    const auto start = std::chrono::steady_clock::now();
    const std::string answer =
        exchange(api.port(), "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n{}", 10s);
    CHECK(first_status(answer) == 400);
    CHECK(elapsed_since(start) < 3s);
  }
  SECTION("a Content-Length that is not a number") {
    const std::string answer =
        exchange(api.port(), "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\n\r\n{}", 10s);
    CHECK(first_status(answer) == 400);
  }
  SECTION("a declared body over the limit, without sending it") {
    const auto start = std::chrono::steady_clock::now();
    const std::string answer =
        exchange(api.port(), "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000\r\n\r\n{}", 10s);
    CHECK(first_status(answer) == 413);
    CHECK(answer.find("larger than") != std::string::npos);
    CHECK(elapsed_since(start) < 3s);
  }
  SECTION("a chunked body that grows over the limit closes the connection") {
    HttpApiConfig small;
    small.max_body_bytes = 1000;
    HttpApiFixture tight(small);
    REQUIRE(tight.start_error().empty());
    const int fd = connect_to(tight.port());
    REQUIRE(fd >= 0);
    std::string request = "POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int k = 0; k < 3; ++k) request += "200\r\n" + std::string(0x200, ' ') + "\r\n";
    (void)send_all(fd, request);
    const auto start = std::chrono::steady_clock::now();
    (void)read_until(fd, 10s, [](const std::string&) { return false; });  // until closed
    CHECK(elapsed_since(start) < 5s);
    ::close(fd);
  }
  SECTION("a body that is not JSON, or nests too deep") {
    CHECK(first_status(exchange(api.port(),
                                "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n{x}")) == 400);
    const std::string deep(10'000, '[');
    CHECK(first_status(exchange(api.port(), "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                                std::to_string(deep.size()) + "\r\n\r\n" + deep)) == 400);
  }
  SECTION("an unknown route or method is a JSON 404") {
    const std::string answer = exchange(api.port(), "DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(first_status(answer) == 404);
    CHECK(answer.find(R"({"error":"no such resource"})") != std::string::npos);
  }
  // The server still serves after all of the above.
  CHECK(first_status(exchange(api.port(), kHealthz)) == 200);
}

TEST_CASE("the bearer token guards every route but the public ones; query parameters reach the handler",
          "[http]") {
  HttpApiConfig config;
  config.token = "s3cret";
  HttpApiFixture api(config);
  REQUIRE(api.start_error().empty());
  const std::string body = "{}";
  const std::string echo = "POST /v1/echo?all&limit=5 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n";
  CHECK(first_status(exchange(api.port(), echo + "\r\n" + body)) == 401);
  CHECK(first_status(exchange(api.port(), echo + "Authorization: Bearer wrong\r\n\r\n" + body)) == 401);
  const std::string answer = exchange(api.port(), echo + "Authorization: Bearer s3cret\r\n\r\n" + body);
  REQUIRE(first_status(answer) == 200);
  const auto json = nlohmann::json::parse(answer.substr(answer.find("\r\n\r\n") + 4), nullptr, false);
  REQUIRE(json.is_object());
  CHECK(json["params"]["all"] == "");
  CHECK(json["params"]["limit"] == "5");
  CHECK(first_status(exchange(api.port(), kHealthz)) == 200);  // public
}

TEST_CASE("a request the loop is still working on does not hold up the HTTP thread", "[http]") {
  HttpApiFixture api;
  REQUIRE(api.start_error().empty());
  api.slow_ms = 1'500;
  const int fd = connect_to(api.port());
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, "GET /v1/slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(100ms);  // the slow one is on the loop now
  // Connections are accepted and read meanwhile; their answers follow the
  // slow one's (the loop runs handlers one at a time).
  const auto start = std::chrono::steady_clock::now();
  const int other = connect_to(api.port());
  REQUIRE(other >= 0);
  REQUIRE(send_all(other, kHealthz));
  const std::string answer = read_until(other, 10s, [](const std::string& t) { return complete_responses(t) >= 1; });
  CHECK(first_status(answer) == 200);
  CHECK(elapsed_since(start) < 5s);
  CHECK(first_status(read_until(fd, 10s, [](const std::string& t) { return complete_responses(t) >= 1; })) == 200);
  ::close(other);
  ::close(fd);
}
