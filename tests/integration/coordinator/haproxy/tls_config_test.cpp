// The HAProxy configuration of frontend settings: TLS termination with
// certificates picked by SNI, HTTP/2 by ALPN, the plain-HTTP redirect,
// X-Forwarded-For/-Proto, time-outs and the access log.
#include <catch2/catch.hpp>

#include <string>

#include "coordinator/io/haproxy/config.hpp"

using namespace tide::haproxy;

namespace {

ConfigSpec tls_spec() {
  ConfigSpec spec;
  spec.stats_socket = "/tmp/x/admin.sock";
  spec.backends.push_back(BackendSpec{.name = "business", .slot_count = 4});
  FrontendSpec fe;
  fe.name = "mini_program";
  fe.bind_address = "0.0.0.0";
  fe.bind_port = 8443;
  fe.default_backend = "business";
  fe.certificates = {"/var/lib/tide/tls/mini_program.0.pem", "/var/lib/tide/tls/mini_program.1.pem"};
  spec.frontends.push_back(fe);
  return spec;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The lines of one section ("frontend x"), up to the next blank line.
std::string section(const std::string& text, const std::string& header) {
  const auto at = text.find(header + "\n");
  REQUIRE(at != std::string::npos);
  const auto end = text.find("\n\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

TEST_CASE("a TLS frontend binds with every certificate and offers h2 then http/1.1", "[haproxy][config][tls]") {
  auto c = render_config(tls_spec());
  REQUIRE(c);
  CHECK(has(*c, "  bind 0.0.0.0:8443 ssl crt /var/lib/tide/tls/mini_program.0.pem crt "
                "/var/lib/tide/tls/mini_program.1.pem alpn h2,http/1.1\n"));
  auto spec = tls_spec();
  spec.frontends[0].http2 = false;
  c = render_config(spec);
  REQUIRE(c);
  CHECK(has(*c, "crt /var/lib/tide/tls/mini_program.1.pem alpn http/1.1\n"));
  // No TLS: a plain bind, as before.
  spec.frontends[0].certificates.clear();
  c = render_config(spec);
  REQUIRE(c);
  CHECK(has(*c, "  bind 0.0.0.0:8443\n"));
  CHECK_FALSE(has(*c, "ssl"));
  CHECK_FALSE(has(*c, "forwardfor"));
  CHECK_FALSE(has(*c, "  log "));
}

TEST_CASE("the redirect frontend answers plain HTTP with the https location", "[haproxy][config][tls]") {
  auto spec = tls_spec();
  spec.frontends[0].redirect_port = 8080;
  auto c = render_config(spec);
  REQUIRE(c);
  const std::string redirect = section(*c, "frontend mini_program_redirect");
  CHECK(has(redirect, "  bind 0.0.0.0:8080\n"));
  // The Host header's own port is replaced by the TLS port; path and query kept.
  CHECK(has(redirect,
            "  http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]:8443%[pathq] code 308"));
  CHECK_FALSE(has(redirect, "default_backend"));

  spec.frontends[0].bind_port = 443;
  spec.frontends[0].redirect_port = 80;
  spec.frontends[0].redirect_code = 301;
  c = render_config(spec);
  REQUIRE(c);
  CHECK(has(*c, "location https://%[req.hdr(host),regsub(:[0-9]+$,)]%[pathq] code 301"));
}

TEST_CASE("bad TLS and redirect settings are refused by the generator", "[haproxy][config][tls]") {
  auto spec = tls_spec();
  spec.frontends[0].redirect_port = 8443;
  CHECK(render_config(spec).error() == "frontend 'mini_program': redirect port 0.0.0.0:8443 bound twice");
  spec = tls_spec();
  spec.frontends[0].redirect_port = 8080;
  spec.frontends[0].redirect_code = 200;
  CHECK(render_config(spec).error() == "frontend 'mini_program': redirect_code must be 301, 302, 303, 307 or 308");
  spec = tls_spec();
  spec.frontends[0].certificates.clear();
  spec.frontends[0].redirect_port = 8080;
  CHECK(render_config(spec).error() == "frontend 'mini_program': redirect_port needs TLS certificates");
  spec = tls_spec();
  spec.frontends[0].certificates = {"/a b.pem"};
  CHECK(render_config(spec).error() == "frontend 'mini_program': bad certificate path '/a b.pem'");
  spec = tls_spec();
  spec.frontends[0].redirect_port = 8080;
  FrontendSpec clash = spec.frontends[0];
  clash.name = "mini_program_redirect";
  clash.bind_port = 9443;
  clash.redirect_port = 0;
  spec.frontends.push_back(clash);
  CHECK(has(render_config(spec).error(), "declared twice"));
}

TEST_CASE("forwarded headers, time-outs and the access log are written per frontend and backend",
          "[haproxy][config][tls]") {
  auto spec = tls_spec();
  spec.frontends[0].forwarded_for = true;
  spec.frontends[0].timeout_client_ms = 45'000;
  spec.frontends[0].timeout_http_request_ms = 5'000;
  spec.frontends[0].access_log = "/var/lib/tide/access-mini_program.sock";
  spec.frontends[0].redirect_port = 8080;
  spec.backends[0].timeout_server_ms = 60'000;
  spec.backends[0].timeout_connect_ms = 500;
  spec.backends[0].timeout_queue_ms = 2'000;
  auto c = render_config(spec);
  REQUIRE(c);
  const std::string fe = section(*c, "frontend mini_program");
  CHECK(has(fe, "  option forwardfor\n"));
  CHECK(has(fe, "  http-request set-header X-Forwarded-Proto https if { ssl_fc }\n"));
  CHECK(has(fe, "  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }\n"));
  CHECK(has(fe, "  timeout client 45000ms\n"));
  CHECK(has(fe, "  timeout http-request 5000ms\n"));
  CHECK(has(fe, "  log /var/lib/tide/access-mini_program.sock format raw local0 info\n  option httplog\n"));
  // The redirects are logged too.
  CHECK(has(section(*c, "frontend mini_program_redirect"), "  option httplog\n"));
  const std::string be = section(*c, "\nbackend business");
  CHECK(has(be, "  timeout server 60000ms\n"));
  CHECK(has(be, "  timeout connect 500ms\n"));
  CHECK(has(be, "  timeout queue 2000ms\n"));
  // The defaults stay for what is not set.
  CHECK(has(*c, "defaults\n"));
  CHECK(has(*c, "  timeout http-request 10000ms\n"));

  spec.frontends[0].access_log = "/a b";
  CHECK(render_config(spec).error() == "frontend 'mini_program': bad access_log target '/a b'");
}
