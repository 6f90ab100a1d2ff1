// The web console's side of the admin API's HTTP server: its files, the
// login (form, one-time link, cookie), the cross-site checks on changes, and
// the live event stream (order, keep-alive, a limit on streams, a reader too
// slow to keep up, a stop with streams open). A real HttpApi on a real loop
// and raw TCP clients, as a browser would speak to it. Also the ChangeFeed
// that coalesces the coordinator's changes into events, on a real loop.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "coordinator/io/server/change_feed.hpp"
#include "coordinator/io/server/console_web.hpp"
#include "tests/integration/coordinator/server/http_api_fixture.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kToken = "s3cret-token-for-the-console-tests";

struct Answer {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case; the last of repeated ones
  std::string body;
};

Answer parse(const std::string& text) {
  Answer answer;
  answer.status = first_status(text);
  const auto end = text.find("\r\n\r\n");
  if (end == std::string::npos) return answer;
  std::size_t at = text.find("\r\n") + 2;
  while (at < end) {
    const auto line_end = text.find("\r\n", at);
    const std::string line = text.substr(at, line_end - at);
    if (const auto colon = line.find(':'); colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      answer.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    at = line_end + 2;
  }
  answer.body = text.substr(end + 4);
  return answer;
}

Answer call(std::uint16_t port, const std::string& method, const std::string& path,
            const std::vector<std::string>& headers = {}, const std::string& body = "") {
  std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "Connection: close\r\n\r\n" + body;
  const int fd = connect_to(port);
  if (fd < 0) return {};
  std::string text;
  if (send_all(fd, request)) text = read_until(fd, 10s, [](const std::string&) { return false; });
  ::close(fd);
  return parse(text);
}

const std::string kBearer = std::string("Authorization: Bearer ") + kToken;

HttpApiConfig console_config(const std::filesystem::path& dir) {
  HttpApiConfig config;
  config.token = kToken;
  config.console = true;
  config.console_dir = dir;
  return config;
}

// A console directory with two files, removed at the end.
struct ConsoleDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("tide-console-test-" + std::to_string(::getpid()));
  ConsoleDir() {
    std::filesystem::create_directories(path / "assets");
    std::ofstream(path / "index.html") << "<!doctype html><title>tide</title>";
    std::ofstream(path / "assets" / "app.js") << "console.log('tide');";
  }
  ~ConsoleDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// An open GET /v1/events; reads what arrives.
struct EventStream {
  int fd = -1;
  std::string received;
  EventStream(std::uint16_t port, const std::string& credential) {
    fd = connect_to(port);
    send_all(fd, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n" + credential +
                     "\r\nAccept: text/event-stream\r\n\r\n");
  }
  ~EventStream() {
    if (fd >= 0) ::close(fd);
  }
  // Waits until `needle` has arrived `times` times in all.
  bool wait_for(const std::string& needle, std::size_t times = 1,
                std::chrono::milliseconds timeout = 10s) {
    received += read_until(fd, timeout, [&](const std::string& more) {
      return count(received + more, needle) >= times;
    });
    return count(received, needle) >= times;
  }
  static std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + needle.size()))
      ++n;
    return n;
  }
};

template <class Condition>
bool eventually(std::chrono::milliseconds timeout, Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string session_cookie_header() {
  return "Cookie: tide_console=" + console_session_value(kToken);
}

}  // namespace

TEST_CASE("the console's helpers: cookies, codes, content types", "[console]") {
  CHECK(cookie_value("a=1; tide_console=abc; b=2", "tide_console") == "abc");
  CHECK(cookie_value("tide_console=abc", "tide_console") == "abc");
  CHECK_FALSE(cookie_value("xtide_console=abc; tide_consolex=1", "tide_console").has_value());
  CHECK_FALSE(cookie_value("", "tide_console").has_value());
  CHECK(same_secret("abc", "abc"));
  CHECK_FALSE(same_secret("abc", "abd"));
  CHECK_FALSE(same_secret("abc", "abcd"));
  CHECK(console_session_value("t1") != console_session_value("t2"));
  CHECK(console_session_value("t1").find("t1") == std::string::npos);
  CHECK(content_type_for("app.js") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("index.html") == "text/html; charset=utf-8");
  CHECK(content_type_for("x.unknown") == "application/octet-stream");

  LoginCodes codes;
  const auto t0 = LoginCodes::Clock::now();
  const std::string code = codes.issue(10min, t0);
  CHECK(code.size() == 48);
  CHECK_FALSE(codes.take("not-a-code", t0));
  CHECK(codes.take(code, t0 + 1min));
  CHECK_FALSE(codes.take(code, t0 + 1min));  // once
  const std::string late = codes.issue(10min, t0);
  CHECK_FALSE(codes.take(late, t0 + 11min));  // expired
  for (std::size_t k = 0; k < LoginCodes::kMaxOpen + 10; ++k) (void)codes.issue(10min, t0);
  CHECK(codes.open() == LoginCodes::kMaxOpen);
}

TEST_CASE("the console's files are served from memory with an ETag; a missing console says so",
          "[console]") {
  SECTION("built") {
    ConsoleDir dir;
    HttpApiFixture api(console_config(dir.path));
    REQUIRE(api.start_error().empty());
    Answer root = call(api.port(), "GET", "/");
    CHECK(root.status == 302);
    CHECK(root.headers["location"] == "/console/");
    CHECK(call(api.port(), "GET", "/console").status == 301);
    Answer index = call(api.port(), "GET", "/console/");
    REQUIRE(index.status == 200);
    CHECK(index.body == "<!doctype html><title>tide</title>");
    CHECK(index.headers["content-type"] == "text/html; charset=utf-8");
    CHECK(index.headers["content-security-policy"].find("frame-ancestors 'none'") !=
          std::string::npos);
    CHECK(index.headers["referrer-policy"] == "no-referrer");
    const std::string etag = index.headers["etag"];
    REQUIRE(etag.size() > 2);
    Answer again = call(api.port(), "GET", "/console/", {"If-None-Match: " + etag});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    Answer script = call(api.port(), "GET", "/console/assets/app.js");
    CHECK(script.status == 200);
    CHECK(script.headers["content-type"] == "text/javascript; charset=utf-8");
    CHECK(call(api.port(), "GET", "/console/assets/missing.js").status == 404);
    CHECK(call(api.port(), "GET", "/console/../../etc/passwd").status == 404);
    CHECK(call(api.port(), "POST", "/console/index.html", {}, "{}").status == 405);
  }
  SECTION("not built") {
    HttpApiFixture api(console_config("/nonexistent/tide-console"));
    REQUIRE(api.start_error().empty());
    Answer index = call(api.port(), "GET", "/console/");
    CHECK(index.status == 404);
    CHECK(index.body.find("not built") != std::string::npos);
    CHECK(index.body.find("/nonexistent/tide-console") != std::string::npos);
    // The API itself is unaffected.
    CHECK(call(api.port(), "GET", "/healthz").status == 200);
  }
  SECTION("disabled: no console paths at all") {
    HttpApiConfig config;
    config.token = kToken;
    HttpApiFixture api(config);
    REQUIRE(api.start_error().empty());
    CHECK(call(api.port(), "GET", "/console/").status == 404);
    CHECK(call(api.port(), "GET", "/").status == 404);
  }
}

TEST_CASE(
    "console login: the token gives an HttpOnly SameSite=Strict cookie that works like the token",
    "[console]") {
  ConsoleDir dir;
  HttpApiFixture api(console_config(dir.path));
  REQUIRE(api.start_error().empty());
  const auto port = api.port();
  const std::string marker = "X-Tide-Console: 1";

  CHECK(call(port, "GET", "/console/session").status == 401);
  Answer wrong = call(port, "POST", "/console/login", {marker}, R"({"token":"guess"})");
  CHECK(wrong.status == 401);
  CHECK(wrong.headers.count("set-cookie") == 0);
  CHECK(call(port, "POST", "/console/login", {marker}, R"({"tok":"x"})").status == 400);
  CHECK(call(port, "POST", "/console/login", {marker}, "not json").status == 400);
  // A form posted from another site cannot set the header.
  CHECK(call(port, "POST", "/console/login", {}, json{{"token", kToken}}.dump()).status == 403);

  Answer login = call(port, "POST", "/console/login", {marker}, json{{"token", kToken}}.dump());
  REQUIRE(login.status == 204);
  const std::string cookie = login.headers["set-cookie"];
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find(kToken) == std::string::npos);  // the token itself never goes into the cookie
  const std::string with_cookie = "Cookie: " + cookie.substr(0, cookie.find(';'));
  CHECK(with_cookie == session_cookie_header());

  Answer session = call(port, "GET", "/console/session", {with_cookie});
  REQUIRE(session.status == 200);
  CHECK(json::parse(session.body)["auth_required"] == true);

  // Changes with the cookie need the console's header and this origin.
  CHECK(call(port, "POST", "/v1/echo", {with_cookie}, "{}").status == 403);
  CHECK(call(port, "POST", "/v1/echo", {with_cookie, marker}, "{}").status == 200);
  CHECK(call(port, "POST", "/v1/echo", {with_cookie, marker, "Origin: http://evil.example"}, "{}")
            .status == 403);
  CHECK(call(port, "POST", "/v1/echo",
             {with_cookie, marker, "Origin: http://127.0.0.1:" + std::to_string(port)}, "{}")
            .status == 200);
  // The bearer token needs no header (tidectl), but a browser's cross-site
  // request is refused whatever it carries.
  CHECK(call(port, "POST", "/v1/echo", {kBearer}, "{}").status == 200);
  CHECK(call(port, "POST", "/v1/echo", {kBearer, "Origin: http://evil.example"}, "{}").status ==
        403);
  // A wrong cookie is no credential.
  CHECK(call(port, "POST", "/v1/echo", {"Cookie: tide_console=0000", marker}, "{}").status == 401);

  Answer logout = call(port, "POST", "/console/logout", {with_cookie, marker}, "{}");
  CHECK(logout.status == 204);
  CHECK(logout.headers["set-cookie"].find("Max-Age=0") != std::string::npos);
}

TEST_CASE("a one-time login link logs in once", "[console]") {
  ConsoleDir dir;
  HttpApiFixture api(console_config(dir.path));
  REQUIRE(api.start_error().empty());
  const auto port = api.port();
  Answer issued = call(port, "POST", "/v1/login-code", {kBearer}, R"({"ttl_ms":600000})");
  REQUIRE(issued.status == 200);
  const std::string code = json::parse(issued.body)["code"];

  Answer first = call(port, "GET", "/console/login?code=" + code);
  CHECK(first.status == 303);
  CHECK(first.headers["location"] == "/console/");
  CHECK(first.headers["set-cookie"].find("tide_console=" + console_session_value(kToken)) == 0);
  Answer second = call(port, "GET", "/console/login?code=" + code);
  CHECK(second.status == 303);
  CHECK(second.headers["location"] == "/console/#/login?link=expired");
  CHECK(second.headers.count("set-cookie") == 0);
  CHECK(call(port, "GET", "/console/login?code=forged").headers.count("set-cookie") == 0);

  Answer short_lived = call(port, "POST", "/v1/login-code", {kBearer}, R"({"ttl_ms":1})");
  const std::string stale = json::parse(short_lived.body)["code"];
  std::this_thread::sleep_for(20ms);
  CHECK(call(port, "GET", "/console/login?code=" + stale).headers.count("set-cookie") == 0);
}

TEST_CASE("the event stream: hello, events in order, keep-alive, authentication",
          "[console][events]") {
  ConsoleDir dir;
  HttpApiConfig config = console_config(dir.path);
  config.event_keepalive = 300ms;
  HttpApiFixture api(config);
  REQUIRE(api.start_error().empty());
  const auto port = api.port();

  CHECK(call(port, "GET", "/v1/events").status == 401);

  EventStream stream(port, session_cookie_header());
  REQUIRE(stream.wait_for("event: hello"));
  CHECK(stream.received.find("text/event-stream") != std::string::npos);
  CHECK(stream.received.find("retry: 1000") != std::string::npos);
  REQUIRE(stream.wait_for(": keep-alive"));

  EventStream bearer(port, kBearer);
  REQUIRE(bearer.wait_for("event: hello"));
  for (int k = 0; k < 5; ++k) {
    const json body{{"event", "change"}, {"data", json{{"n", k}}.dump()}};
    REQUIRE(call(port, "POST", "/v1/publish", {kBearer}, body.dump()).status == 200);
  }
  for (EventStream* s : {&stream, &bearer}) {
    REQUIRE(s->wait_for("event: change", 5));
    std::size_t at = 0;
    for (int k = 0; k < 5; ++k) {
      const auto next = s->received.find("data: {\"n\":" + std::to_string(k) + "}", at);
      REQUIRE(next != std::string::npos);
      at = next;
    }
  }
}

TEST_CASE("the event stream: a limit on streams, a reader too slow is closed, a stop ends them",
          "[console][events]") {
  ConsoleDir dir;
  HttpApiConfig config = console_config(dir.path);
  config.max_event_streams = 2;
  config.max_event_backlog_bytes = 256 * 1024;
  auto api = std::make_unique<HttpApiFixture>(config);
  REQUIRE(api->start_error().empty());
  const auto port = api->port();

  auto slow = std::make_unique<EventStream>(port, kBearer);
  EventStream live(port, kBearer);
  REQUIRE(live.wait_for("event: hello"));
  REQUIRE(eventually(10s, [&] {
    return json::parse(call(port, "GET", "/v1/streams", {kBearer}).body)["streams"] == 2;
  }));
  Answer third = call(port, "GET", "/v1/events", {kBearer});
  CHECK(third.status == 503);

  // `slow` never reads: once the socket buffers are full its backlog grows
  // past the limit and it is closed; `live` and the API carry on.
  // 16 MiB in batches of 128 KiB (less than the backlog allowed, so that
  // `live`, which reads between batches, keeps up).
  const std::string frame(16 * 1024, 'x');
  for (int k = 0; k < 128; ++k) {
    const json body{{"data", "\"" + frame + "\""}, {"times", 8}};
    REQUIRE(call(port, "POST", "/v1/publish", {kBearer}, body.dump()).status == 200);
    live.received += read_until(live.fd, 10ms, [](const std::string&) { return false; });
  }
  REQUIRE(eventually(20s, [&] {
    return json::parse(call(port, "GET", "/v1/streams", {kBearer}).body)["streams"] == 1;
  }));
  CHECK(call(port, "GET", "/healthz").status == 200);

  // A stop with a stream open ends it and returns.
  const auto start = std::chrono::steady_clock::now();
  api.reset();
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  slow.reset();
}

TEST_CASE("the change feed coalesces changes into one event per interval, only with listeners",
          "[console][events]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> published;
  bool listening = true;
  {
    ChangeFeed feed(
        &loop, [&](const std::string& data) { published.push_back(data); },
        [&] { return listening; }, 20ms);
    feed.note("instance", "web", "i-1");
    feed.note("instance", "web", "i-1");
    feed.note("group", "web");
    feed.note("activity", "web", "a-1");
    const auto run_until = [&](std::size_t n) {
      for (int k = 0; k < 200 && published.size() < n; ++k)
        uv_run(&loop, UV_RUN_NOWAIT), std::this_thread::sleep_for(5ms);
    };
    run_until(1);
    REQUIRE(published.size() == 1);
    const auto changes = json::parse(published[0])["changes"];
    CHECK(changes.size() == 3);
    CHECK(changes[0] == json{{"kind", "activity"}, {"group", "web"}, {"id", "a-1"}});
    CHECK(changes[1] == json{{"kind", "group"}, {"group", "web"}});

    for (std::size_t k = 0; k < ChangeFeed::kMaxListed + 5; ++k)
      feed.note("instance", "web", "i-" + std::to_string(k));
    run_until(2);
    REQUIRE(published.size() == 2);
    CHECK(json::parse(published[1])["changes"] == json::array({json{{"kind", "all"}}}));

    listening = false;
    feed.note("group", "web");
    for (int k = 0; k < 20; ++k) uv_run(&loop, UV_RUN_NOWAIT), std::this_thread::sleep_for(5ms);
    CHECK(published.size() == 2);
  }
  while (uv_run(&loop, UV_RUN_NOWAIT) != 0) {
  }
  CHECK(uv_loop_close(&loop) == 0);
}
