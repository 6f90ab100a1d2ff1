// TLS, redirect, forwarded headers, time-outs and access logs of
// load_balancer.frontends/backends in the coordinator's YAML config: parsing,
// durations, and the errors that name the file, the key and the reason
// (certificates made with the openssl command line).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "coordinator/io/server/config.hpp"

using namespace tide::coordinator;
namespace fs = std::filesystem;

namespace {

struct Certs {
  fs::path dir;
  Certs() {
    dir = fs::temp_directory_path() / ("tide-tls-config-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    make("a", "a.example.com");
    make("b", "b.example.com");
    make("a2", "a.example.com");
    std::ofstream(dir / "a.both.pem") << read(dir / "a.crt") << read(dir / "a.key");
    std::ofstream(dir / "empty.pem") << "";
  }
  ~Certs() { fs::remove_all(dir); }
  void make(const std::string& name, const std::string& host) const {
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + host +
                            " -addext subjectAltName=DNS:" + host + " -keyout " + (dir / (name + ".key")).string() +
                            " -out " + (dir / (name + ".crt")).string() + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  [[nodiscard]] std::string path(const std::string& file) const { return (dir / file).string(); }
};

std::string yaml(const Certs& certs, const std::string& frontend_extra, const std::string& backend_extra = "") {
  return "state_dir: " + certs.path("state") + R"(
load_balancer:
  backends:
    - name: business
      slots: 4
)" + backend_extra + R"(
  frontends:
    - name: mini_program
      bind_port: 18443
      default_backend: business
)" + frontend_extra;
}

std::string error_of(const std::string& text) {
  auto config = parse_config(text, "c.yaml");
  REQUIRE_FALSE(config);
  return config.error().message;
}

}  // namespace

TEST_CASE("a TLS frontend with a certificate and key in two files or one, redirect, headers, time-outs, log",
          "[config][frontends][tls]") {
  Certs certs;
  auto config = parse_config(yaml(certs, R"(
      tls:
        certificates:
          - cert: )" + certs.path("a.crt") + R"(
            key: )" + certs.path("a.key") + R"(
          - cert: )" + certs.path("a.both.pem") + R"(
        redirect_port: 18080
        redirect_code: 301
        http2: false
        watch_interval: 2s
      forwarded_for: true
      timeout_client: 1m
      timeout_http_request_ms: 5000
      access_log: log
)", R"(      timeout_server: 90s
      timeout_connect: 500ms
      timeout_queue_ms: 3000
)"), "c.yaml");
  // Two certificates for one name: refused (see below); one of them is enough here.
  REQUIRE_FALSE(config);
  CHECK(config.error().message.find("duplicate SNI name 'a.example.com'") != std::string::npos);

  config = parse_config(yaml(certs, R"(
      tls:
        certificates:
          - cert: )" + certs.path("a.crt") + R"(
            key: )" + certs.path("a.key") + R"(
          - cert: )" + certs.path("b.crt") + R"(
            key: )" + certs.path("b.key") + R"(
        redirect_port: 18080
        redirect_code: 301
        http2: false
        watch_interval: 2s
      forwarded_for: true
      timeout_client: 1m
      timeout_http_request_ms: 5000
      access_log: log
)", R"(      timeout_server: 90s
      timeout_connect: 500ms
      timeout_queue_ms: 3000
)"), "c.yaml");
  REQUIRE(config);
  const auto& fe = config->load_balancer.frontends[0];
  REQUIRE(fe.tls.certificates.size() == 2);
  CHECK(fe.tls.redirect_port == 18080);
  CHECK(fe.tls.redirect_code == 301);
  CHECK_FALSE(fe.tls.http2);
  CHECK(fe.tls.watch_interval_ms == 2000);
  CHECK(fe.forwarded_for);
  CHECK(fe.timeout_client_ms == 60'000);
  CHECK(fe.timeout_http_request_ms == 5'000);
  const auto& be = config->load_balancer.backends[0];
  CHECK(be.timeout_server_ms == 90'000);
  CHECK(be.timeout_connect_ms == 500);
  CHECK(be.timeout_queue_ms == 3'000);

  const auto specs = haproxy_frontends(config->load_balancer, certs.path("state"));
  REQUIRE(specs.size() == 1);
  CHECK(specs[0].certificates ==
        std::vector<std::string>{certs.path("state/tls/mini_program.0.pem"), certs.path("state/tls/mini_program.1.pem")});
  CHECK(specs[0].access_log == certs.path("state/access-mini_program.sock"));
  CHECK(specs[0].redirect_port == 18080);
  CHECK(haproxy_backends(config->load_balancer)[0].timeout_server_ms == 90'000);

  // One file holding the certificate and the key.
  config = parse_config(yaml(certs, "      tls:\n        certificates:\n          - cert: " + certs.path("a.both.pem") + "\n"),
                        "c.yaml");
  REQUIRE(config);
}

TEST_CASE("certificate errors name the file, the key and the reason", "[config][frontends][tls]") {
  Certs certs;
  const std::string key = "c.yaml: load_balancer.frontends[0].tls.certificates[0]";
  auto one = [&](const std::string& cert, const std::string& key_file = "") {
    std::string text = "      tls:\n        certificates:\n          - cert: " + cert + "\n";
    if (!key_file.empty()) text += "            key: " + key_file + "\n";
    return error_of(yaml(certs, text));
  };
  CHECK(one(certs.path("missing.pem")) == key + ".cert: " + certs.path("missing.pem") + ": cannot read the file");
  CHECK(one(certs.path("a.crt")) == key + ".cert: " + certs.path("a.crt") +
                                        ": holds no private key (give it in the same file or as key)");
  CHECK(one(certs.path("a.key")) == key + ".cert: " + certs.path("a.key") + ": holds no PEM certificate");
  CHECK(one(certs.path("empty.pem")) == key + ".cert: " + certs.path("empty.pem") + ": holds no PEM certificate");
  CHECK(one(certs.path("a.crt"), certs.path("b.key")) ==
        key + ".key: " + certs.path("b.key") + ": the private key does not belong to the certificate in " +
            certs.path("a.crt"));
  CHECK(one(certs.path("a.crt"), certs.path("nokey")) == key + ".key: " + certs.path("nokey") + ": cannot read the file");

  // Two certificates for one name: HAProxy could answer with either.
  CHECK(error_of(yaml(certs, "      tls:\n        certificates:\n          - cert: " + certs.path("a.both.pem") +
                                 "\n          - cert: " + certs.path("a2.crt") + "\n            key: " +
                                 certs.path("a2.key") + "\n")) ==
        "c.yaml: load_balancer.frontends[0].tls.certificates[1].cert: duplicate SNI name 'a.example.com': "
        "load_balancer.frontends[0].tls.certificates[0] has it too, so HAProxy could serve either");
}

TEST_CASE("redirect ports, durations and access logs are checked", "[config][frontends][tls]") {
  Certs certs;
  const std::string tls = "      tls:\n        certificates:\n          - cert: " + certs.path("a.both.pem") + "\n";
  const std::string fe = "c.yaml: load_balancer.frontends[0].";
  CHECK(error_of(yaml(certs, tls + "        redirect_port: 18443\n")) == fe + "tls.redirect_port: equals bind_port 18443");
  CHECK(error_of(yaml(certs, tls + "        redirect_port: 18444\n", "      bind_port: 18444\n")) ==
        fe + "tls.redirect_port: port 18444 used twice (another bind has it)");
  CHECK(error_of(yaml(certs, "      tls:\n        redirect_port: 18080\n")) ==
        fe + "tls.redirect_port: needs tls.certificates (a redirect to https needs https)");
  CHECK(error_of(yaml(certs, tls + "        redirect_port: 18080\n        redirect_code: 302x\n")).find(
            fe + "tls.redirect_code: wrong type") == 0);
  CHECK(error_of(yaml(certs, tls + "        redirect_port: 18080\n        redirect_code: 200\n")) ==
        fe + "tls.redirect_code: must be 301, 302, 303, 307 or 308");

  CHECK(error_of(yaml(certs, "      timeout_client: 30\n")) ==
        fe + "timeout_client: '30' is not a duration (e.g. 500ms, 10s, 5m, 1h, 1h30m)");
  CHECK(error_of(yaml(certs, "      timeout_client: 30 s\n")) ==
        fe + "timeout_client: '30 s' is not a duration (e.g. 500ms, 10s, 5m, 1h, 1h30m)");
  CHECK(error_of(yaml(certs, "      timeout_client: 0s\n")) == fe + "timeout_client: '0s' must be between 1ms and 24h");
  CHECK(error_of(yaml(certs, "      timeout_client: 25h\n")) == fe + "timeout_client: '25h' must be between 1ms and 24h");
  CHECK(error_of(yaml(certs, "      timeout_client: 30s\n      timeout_client_ms: 30000\n")) ==
        fe + "timeout_client: give either timeout_client or timeout_client_ms, not both");
  CHECK(error_of(yaml(certs, "", "      timeout_server_ms: 0\n")) ==
        "c.yaml: load_balancer.backends[0].timeout_server_ms: must be 1..86400000 (24 h)");
  CHECK(error_of(yaml(certs, "", "      timeout_queue: -1s\n")).find("c.yaml: load_balancer.backends[0].timeout_queue: ") == 0);
  CHECK(error_of(yaml(certs, "      timeout_clients: 30s\n")) == fe + "timeout_clients: unknown key");

  CHECK(error_of(yaml(certs, "      access_log: relative.log\n")) ==
        fe + "access_log: must be 'log' (the coordinator's log) or an absolute file path");
  CHECK(error_of(yaml(certs, "      access_log: /nonexistent-dir/access.log\n")) ==
        fe + "access_log: directory /nonexistent-dir does not exist");
  auto config = parse_config(yaml(certs, "      access_log: " + certs.path("access.log") + "\n"), "c.yaml");
  REQUIRE(config);
  CHECK(config->load_balancer.frontends[0].access_log == certs.path("access.log"));
}

TEST_CASE("durations in every unit", "[config][duration]") {
  CHECK(parse_duration_ms("500ms").value() == 500);
  CHECK(parse_duration_ms("30s").value() == 30'000);
  CHECK(parse_duration_ms("5m").value() == 300'000);
  CHECK(parse_duration_ms("1m30s").value() == 90'000);
  CHECK(parse_duration_ms("1h").value() == 3'600'000);
  CHECK(parse_duration_ms("24h").value() == 86'400'000);
  CHECK_FALSE(parse_duration_ms(""));
  CHECK_FALSE(parse_duration_ms("s"));
  CHECK_FALSE(parse_duration_ms("1.5s"));
  CHECK_FALSE(parse_duration_ms("9999999999s"));
}

TEST_CASE("what a SIGHUP can apply and what needs a restart", "[config][reload]") {
  Certs certs;
  auto running = parse_config(yaml(certs, "      timeout_client: 30s\n"), "c.yaml");
  REQUIRE(running);
  auto fresh = *running;
  fresh.load_balancer.frontends[0].timeout_client_ms = 60'000;
  fresh.load_balancer.frontends[0].forwarded_for = true;
  fresh.load_balancer.backends[0].timeout_server_ms = 5'000;
  CHECK(changes_needing_restart(*running, fresh).empty());
  fresh.load_balancer.backends[0].slots = 8;
  fresh.api.listen_port = 9999;
  fresh.load_balancer.reconcile_interval_ms = 100;
  CHECK(changes_needing_restart(*running, fresh) ==
        std::vector<std::string>{"api", "load_balancer.reconcile_interval_ms",
                                 "load_balancer.backends (names, slots, binds)"});
}
