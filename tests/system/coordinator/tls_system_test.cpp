// The HTTPS frontend of the embedded HAProxy end to end (docs/haproxy.md,
// "HTTPS, redirect, ..." and "Certificate renewal and SIGHUP"): a real
// coordinator terminates TLS with a certificate of a CA made here with the
// openssl command line. curl verifies it over HTTP/1.1 and HTTP/2 (ALPN),
// plain HTTP on the redirect port answers 308 with the https location, and a
// renewed certificate renamed over the watched files is served to new
// handshakes within seconds while wrk's load over TLS fails no request. A
// SIGHUP afterwards re-reads the files without reloading HAProxy.
#include <algorithm>
#include <regex>
#include <sstream>
#include <thread>

#include <signal.h>

#include "fleet_fixture.hpp"

namespace {

using namespace tide::system_test;
namespace fs = std::filesystem;

// A certificate authority and the server certificates it signs, made with the
// openssl command line in a directory of their own (removed at the end).
class TestCa {
 public:
  TestCa() : m_dir(st::make_temp_dir("tide-tls")) {
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tide-system-test-ca -keyout " +
        path("ca.key") + " -out " + path("ca.pem"));
    std::ofstream(m_dir / "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                        << "basicConstraints=CA:FALSE\n"
                                        << "extendedKeyUsage=serverAuth\n";
  }
  ~TestCa() {
    std::error_code ec;
    if (std::getenv("TIDE_KEEP_SYSTEM_DIRS") == nullptr) fs::remove_all(m_dir, ec);
  }
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  // A fresh key `<name>.key` and its certificate `<name>.pem` for "localhost"
  // and 127.0.0.1, signed by the CA with the serial number `serial_hex`.
  void issue(const std::string& name, const std::string& serial_hex) const {
    run("openssl req -new -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " +
        path(name + ".key") + " -out " + path(name + ".csr"));
    run("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path("ca.pem") + " -CAkey " +
        path("ca.key") + " -set_serial 0x" + serial_hex + " -days 2 -extfile " +
        path("server.ext") + " -out " + path(name + ".pem"));
  }

  [[nodiscard]] std::string path(const std::string& file) const { return (m_dir / file).string(); }
  [[nodiscard]] const fs::path& dir() const { return m_dir; }

 private:
  fs::path m_dir;

  void run(const std::string& command) const {
    const auto done = st::run_shell(command, m_dir / "openssl.log", 60s);
    INFO(command << "\n" << done.output);
    REQUIRE(done.exit_code == 0);
  }
};

// One `load_balancer.frontends` entry: HTTPS on `port` with the certificate
// `server.pem` and key `server.key` of `ca`, HTTP/2, plain HTTP on
// `redirect_port`, the files watched every 500 ms; to backend "web".
std::string https_frontend(const TestCa& ca, std::uint16_t port, std::uint16_t redirect_port) {
  std::ostringstream yaml;
  yaml << "  frontends:\n"
       << "    - name: secure\n"
       << "      bind_address: 127.0.0.1\n"
       << "      bind_port: " << port << "\n"
       << "      default_backend: web\n"
       << "      tls:\n"
       << "        certificates:\n"
       << "          - cert: " << ca.path("server.pem") << "\n"
       << "            key: " << ca.path("server.key") << "\n"
       << "        http2: true\n"
       << "        redirect_port: " << redirect_port << "\n"
       << "        watch: true\n"
       << "        watch_interval: 500ms\n";
  return yaml.str();
}

// curl over HTTPS to localhost:`port`, verifying the certificate with the CA:
// "<status> <HTTP version>" ("200 2" for HTTP/2), or curl's error.
std::string curl_https(const Fleet& fleet, const TestCa& ca, std::uint16_t port,
                       const std::string& version_flag) {
  const std::string host = "localhost:" + std::to_string(port);
  return st::run_shell("curl -sS --max-time 10 " + version_flag + " --cacert " + ca.path("ca.pem") +
                           " --resolve " + host +
                           ":127.0.0.1 -o /dev/null -w '%{http_code} %{http_version}' https://" +
                           host + "/",
                       fleet.dir() / "curl.log", 30s)
      .output;
}

// The serial number (hex, as `openssl x509 -serial` prints it) of the
// certificate a new handshake with SNI "localhost" gets on `port`, verified
// against the CA and the host name; "" when the handshake or the check failed.
std::string served_serial(const Fleet& fleet, const TestCa& ca, std::uint16_t port) {
  const auto run = st::run_shell(
      "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
          " -servername localhost -verify_hostname localhost -verify_return_error -CAfile " +
          ca.path("ca.pem") + " 2>/dev/null | openssl x509 -noout -serial",
      fleet.dir() / "s_client.log", 30s);
  std::smatch match;
  if (run.exit_code != 0 ||
      !std::regex_search(run.output, match, std::regex(R"(serial=([0-9A-F]+))")))
    return "";
  return match[1];
}

// Replaces `target` with `source` in one rename, as a renewal does: a reader
// sees the old file or the new one, never half of one.
void rename_over(const std::string& source, const std::string& target) {
  std::error_code ec;
  fs::rename(source, target, ec);
  INFO(source << " -> " << target << ": " << ec.message());
  REQUIRE_FALSE(ec);
}

std::vector<pid_t> sorted(std::vector<pid_t> pids) {
  std::sort(pids.begin(), pids.end());
  return pids;
}

}  // namespace

TEST_CASE(
    "HTTPS frontend: curl verifies the certificate over HTTP/1.1 and HTTP/2, plain HTTP is "
    "redirected, a "
    "renewed certificate is served without a reload while wrk over TLS fails no request",
    "[system][tls]") {
  TestCa ca;
  ca.issue("server", "1001");
  ca.issue("renewed", "2002");
  const std::uint16_t port = st::free_port();
  const std::uint16_t redirect_port = st::free_port();
  Fleet fleet(https_frontend(ca, port, redirect_port));
  fleet.start_coordinator();
  fleet.create_group(2, 200);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 2; }));

  // Both protocols by ALPN, the certificate verified against the CA.
  std::string http1;
  REQUIRE(st::eventually(
      20s, [&] { return (http1 = curl_https(fleet, ca, port, "--http1.1")) == "200 1.1"; }));
  const std::string http2 = curl_https(fleet, ca, port, "--http2");
  INFO("curl --http2: " << http2);
  CHECK(http2 == "200 2");
  CHECK(served_serial(fleet, ca, port) == "1001");

  // Plain HTTP answers with the same host, the HTTPS port, the path and the query.
  const auto redirect = st::run_shell(
      "curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' 'http://localhost:" +
          std::to_string(redirect_port) + "/some/path?q=1'",
      fleet.dir() / "curl.log", 30s);
  CHECK(redirect.output == "308 https://localhost:" + std::to_string(port) + "/some/path?q=1");

  const auto haproxy = sorted(fleet.haproxy_processes());
  REQUIRE(haproxy.size() == 2);  // master and worker

  // Load over TLS: keep-alive connections, and connections closed after every
  // answer so that handshakes go on while the certificate changes.
  const std::string url = "https://localhost:" + std::to_string(port) + "/";
  const auto load_started = std::chrono::steady_clock::now();
  st::Child wrk({"wrk", "-t1", "-c8", "-d12s", url}, fleet.dir() / "wrk.log");
  st::Child handshakes({"wrk", "-t1", "-c2", "-d12s", "-H", "Connection: close", url},
                       fleet.dir() / "wrk-handshakes.log");
  std::this_thread::sleep_for(3s);

  // The renewal: the key, then the certificate, each renamed over the file
  // the coordinator watches (between the two, key and certificate do not
  // match, and HAProxy keeps the old pair).
  const auto renewed = std::chrono::steady_clock::now();
  rename_over(ca.path("renewed.key"), ca.path("server.key"));
  rename_over(ca.path("renewed.pem"), ca.path("server.pem"));
  std::string serial;
  REQUIRE(st::eventually(20s, [&] { return (serial = served_serial(fleet, ca, port)) == "2002"; }));
  const auto served = std::chrono::steady_clock::now();
  const double seconds_to_new_certificate = std::chrono::duration<double>(served - renewed).count();
  WARN("renewed certificate served " << seconds_to_new_certificate << " s after the rename");
  CHECK(served < load_started + 12s);  // while the load was still running

  REQUIRE(wrk.wait(40s).has_value());
  REQUIRE(handshakes.wait(40s).has_value());
  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  const auto handshake_result = st::parse_wrk(st::read_file(fleet.dir() / "wrk-handshakes.log"));
  WARN("wrk keep-alive: " << result.requests << " requests, " << result.non_2xx << " non-2xx/3xx, "
                          << result.socket_errors
                          << " socket errors; wrk Connection: close: " << handshake_result.requests
                          << " requests, " << handshake_result.non_2xx << " non-2xx/3xx, "
                          << handshake_result.socket_errors << " socket errors");
  {
    INFO(result.output);
    CHECK(result.requests > 1000);
    CHECK(result.non_2xx == 0);
    CHECK(result.socket_errors == 0);
  }
  {
    INFO(handshake_result.output);
    CHECK(handshake_result.requests > 100);
    CHECK(handshake_result.non_2xx == 0);
    CHECK(handshake_result.socket_errors == 0);
  }

  // The renewed certificate verifies like the first one, over both protocols;
  // HAProxy was not reloaded (same master, same worker).
  CHECK(curl_https(fleet, ca, port, "--http2") == "200 2");
  CHECK(curl_https(fleet, ca, port, "--http1.1") == "200 1.1");
  CHECK(sorted(fleet.haproxy_processes()) == haproxy);
  const std::string pem = (fleet.dir() / "state" / "tls" / "secure.0.pem").string();
  {
    const std::string log = fleet.log();
    INFO(log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
    CHECK(log.find("certificate " + pem + " (serial 2002) loaded into HAProxy without a reload") !=
          std::string::npos);
  }

  // SIGHUP re-reads the configuration and the certificate files: nothing
  // changed, so nothing is reloaded and the renewed certificate stays.
  fleet.signal_coordinator(SIGHUP);
  const std::string reloaded = "reloaded " + (fleet.dir() / "coordinator.yaml").string() + ": ";
  REQUIRE(st::eventually(15s, [&] { return fleet.log().find(reloaded) != std::string::npos; }));
  CHECK(served_serial(fleet, ca, port) == "2002");
  CHECK(curl_https(fleet, ca, port, "--http2") == "200 2");
  CHECK(sorted(fleet.haproxy_processes()) == haproxy);
  const std::string log = fleet.log();
  INFO(log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
  CHECK(log.find("TLS certificates re-read") != std::string::npos);
  CHECK(log.find("seamless reload") == std::string::npos);
  CHECK(log.find("restarting") == std::string::npos);
  // No line at level error or critical (the mismatch between the renames is a warning).
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    CHECK_FALSE(std::regex_search(line, std::regex(R"(^\S+ (error|critical) )")));
  }
}
