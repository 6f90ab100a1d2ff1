// HAProxy configuration generator: one backend of pre-declared slots per tide
// load-balancer binding (with its own frontend when it has a bind_port),
// shared frontends that route by path prefix to several backends, and the
// admin stats socket the driver talks to. Pure: returns text, writes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace tide::haproxy {

// A slot that starts out pointing at an instance (a reload that must not lose
// the membership: HAProxy 2.6's server-state-file does not keep addresses set
// at run time).
struct SlotSpec {
  std::uint32_t slot = 0;  // 1..slot_count
  std::string address;     // IP literal
  std::uint16_t port = 0;  // 1..65535
  bool ready = true;       // false: declared in maintenance (`disabled`)
};

struct BackendSpec {
  std::string name;            // backend name, [A-Za-z0-9_.-]+; the frontend is "fe_<name>"
  std::string bind_address = "127.0.0.1";
  // Port of the backend's own frontend "fe_<name>"; 0 = none: the backend is
  // reachable only through a shared FrontendSpec that routes to it.
  std::uint16_t bind_port = 0;
  std::string slot_prefix = "s";
  std::uint32_t slot_count = 64;  // 1..4096
  std::string balance = "roundrobin";  // must be dynamic: roundrobin, leastconn, first, random
  // HAProxy's own health checks, for the benchmark baseline only: tide drives
  // the state itself and does not need them.
  bool health_check = false;
  // Time-outs of this backend; 0: the defaults section's (ConfigSpec).
  std::uint32_t timeout_server_ms = 0;
  std::uint32_t timeout_connect_ms = 0;
  std::uint32_t timeout_queue_ms = 0;
  std::string check_path = "/ready";
  std::uint32_t check_inter_ms = 2000;
  std::uint32_t check_rise = 2;
  std::uint32_t check_fall = 3;
  // Empty: every slot starts in maintenance at a placeholder address (one
  // `server-template` line). Otherwise the slots are declared one by one and
  // these start at their instance's endpoint.
  std::vector<SlotSpec> slots_in_use{};
};

// One path-prefix rule of a shared frontend: `use_backend <backend> if { path_beg <path_prefix> }`.
struct RouteSpec {
  std::string path_prefix;  // starts with '/', no spaces
  std::string backend;      // a BackendSpec name
};

// A frontend shared by several backends (the product brief's one load balancer
// in front of the business and the session clusters). Routes are tried in
// order; requests no route matches go to default_backend.
struct FrontendSpec {
  std::string name;  // frontend name, [A-Za-z0-9_.-]+, distinct from every "fe_<backend>"
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;  // 1..65535
  std::string default_backend;  // a BackendSpec name; empty only when there are routes (unmatched: 503)
  std::vector<RouteSpec> routes;
  // TLS termination: the PEM files (certificate chain and private key in one
  // file) HAProxy loads. Empty: plain HTTP. Several: HAProxy answers each
  // client with the certificate whose names match its SNI (the first one when
  // none does).
  std::vector<std::string> certificates{};
  bool http2 = true;  // TLS only: offer h2 before http/1.1 by ALPN
  // A plain-HTTP bind on this port (same address) that redirects every
  // request to https://<host>:<bind_port><path>; 0 = none. TLS only.
  std::uint16_t redirect_port = 0;
  std::uint16_t redirect_code = 308;  // 301, 302, 303, 307 or 308
  bool forwarded_for = false;  // add X-Forwarded-For and X-Forwarded-Proto
  std::uint32_t timeout_client_ms = 0;        // 0: the defaults section's
  std::uint32_t timeout_http_request_ms = 0;  // 0: the defaults section's
  // Where HAProxy sends this frontend's access log (HTTP log format), as a
  // `log` target: "stdout", or the path of a unix datagram socket. Empty: none.
  std::string access_log{};
};

struct ConfigSpec {
  std::string stats_socket;       // unix socket path (mode 600, level admin)
  std::string stats_tcp;          // optional "127.0.0.1:9999": also expose the API on TCP
  std::string pid_file;           // optional
  std::vector<BackendSpec> backends;
  std::vector<FrontendSpec> frontends;  // optional shared frontends
  std::uint32_t maxconn = 4096;  // HAProxy needs ~2 fds per connection; the hard fd limit here is 20,000
  std::uint32_t timeout_connect_ms = 1000;
  std::uint32_t timeout_client_ms = 30000;
  std::uint32_t timeout_server_ms = 30000;
  std::uint32_t timeout_queue_ms = 5000;
  std::uint32_t timeout_http_keep_alive_ms = 5000;
  std::uint32_t timeout_http_request_ms = 10000;  // a client's whole request head
  std::uint32_t stats_timeout_s = 3600;  // idle time before HAProxy closes a runtime API connection
  std::uint32_t retries = 3;
  // true: one request per server connection (`option http-server-close`):
  // a drained server sees its connections end as soon as requests finish.
  // false: keep server connections alive (faster); the retry policy covers a
  // reused connection that the server closed.
  bool server_close = false;
};

// Checks names, ports and ranges; returns the configuration text or a clear error.
[[nodiscard]] tl::expected<std::string, std::string> render_config(const ConfigSpec& spec);

}  // namespace tide::haproxy
