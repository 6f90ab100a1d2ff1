#include "coordinator/io/haproxy/config.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace tide::haproxy {
namespace {

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

bool valid_token(const std::string& s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#' || c == '"' || c == '\'' || c == '\\';
  });
}

std::string bind_target(const std::string& address, std::uint16_t port) {
  // IPv6 literals need brackets-free "ipv6@addr:port" to be unambiguous.
  if (address.find(':') != std::string::npos) return "ipv6@" + address + ":" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

}  // namespace

tl::expected<std::string, std::string> render_config(const ConfigSpec& spec) {
  using Err = tl::unexpected<std::string>;
  if (!valid_token(spec.stats_socket) || spec.stats_socket.size() > 100) {
    return Err("stats_socket must be a unix socket path without spaces, at most 100 bytes");
  }
  if (!spec.stats_tcp.empty() && !valid_token(spec.stats_tcp)) return Err("stats_tcp must be address:port");
  if (!spec.pid_file.empty() && !valid_token(spec.pid_file)) return Err("pid_file must not contain spaces");
  if (spec.backends.empty()) return Err("at least one backend is needed");
  if (spec.timeout_connect_ms == 0 || spec.timeout_client_ms == 0 || spec.timeout_server_ms == 0) {
    return Err("timeouts must be positive");
  }
  std::set<std::string> names;
  std::set<std::pair<std::string, std::uint16_t>> binds;
  // Backends reachable through some frontend (their own or a shared one).
  std::set<std::string> reachable;
  for (const auto& f : spec.frontends) {
    if (!f.default_backend.empty()) reachable.insert(f.default_backend);
    for (const auto& r : f.routes) reachable.insert(r.backend);
  }
  for (const auto& b : spec.backends) {
    if (!valid_name(b.name)) return Err("backend name '" + b.name + "' must match [A-Za-z0-9_.-]{1,64}");
    if (!names.insert(b.name).second) return Err("backend '" + b.name + "' is declared twice");
    if (!valid_token(b.bind_address)) return Err("backend '" + b.name + "': bad bind_address");
    if (b.bind_port != 0 && !binds.insert({b.bind_address, b.bind_port}).second) {
      return Err("backend '" + b.name + "': " + b.bind_address + ":" + std::to_string(b.bind_port) + " bound twice");
    }
    if (!valid_name(b.slot_prefix)) return Err("backend '" + b.name + "': bad slot_prefix");
    if (b.slot_count == 0 || b.slot_count > 4096) return Err("backend '" + b.name + "': slot_count must be 1..4096");
    static const std::set<std::string> kDynamic = {"roundrobin", "leastconn", "first", "random"};
    if (!kDynamic.contains(b.balance)) {
      return Err("backend '" + b.name + "': balance '" + b.balance +
                 "' is not dynamic (use roundrobin, leastconn, first or random)");
    }
    if (b.health_check && (!valid_token(b.check_path) || b.check_path[0] != '/')) {
      return Err("backend '" + b.name + "': check_path must start with '/'");
    }
    std::set<std::uint32_t> used;
    for (const SlotSpec& slot : b.slots_in_use) {
      const std::string where = "backend '" + b.name + "': slot " + std::to_string(slot.slot);
      if (slot.slot == 0 || slot.slot > b.slot_count) return Err(where + " is outside 1.." + std::to_string(b.slot_count));
      if (!used.insert(slot.slot).second) return Err(where + " is in use twice");
      if (!valid_token(slot.address) || slot.port == 0) return Err(where + ": bad address or port");
    }
  }

  std::set<std::string> frontend_names;
  for (const auto& b : spec.backends) {
    if (b.bind_port != 0) frontend_names.insert("fe_" + b.name);
  }
  for (const auto& f : spec.frontends) {
    if (!valid_name(f.name)) return Err("frontend name '" + f.name + "' must match [A-Za-z0-9_.-]{1,64}");
    if (!frontend_names.insert(f.name).second) return Err("frontend '" + f.name + "' is declared twice");
    if (f.bind_port == 0) return Err("frontend '" + f.name + "': bind_port must be 1..65535");
    if (!valid_token(f.bind_address)) return Err("frontend '" + f.name + "': bad bind_address");
    if (!binds.insert({f.bind_address, f.bind_port}).second) {
      return Err("frontend '" + f.name + "': " + f.bind_address + ":" + std::to_string(f.bind_port) + " bound twice");
    }
    for (const auto& certificate : f.certificates) {
      if (!valid_token(certificate)) return Err("frontend '" + f.name + "': bad certificate path '" + certificate + "'");
    }
    if (f.redirect_port != 0) {
      if (f.certificates.empty()) return Err("frontend '" + f.name + "': redirect_port needs TLS certificates");
      if (!binds.insert({f.bind_address, f.redirect_port}).second) {
        return Err("frontend '" + f.name + "': redirect port " + f.bind_address + ":" +
                   std::to_string(f.redirect_port) + " bound twice");
      }
      if (!frontend_names.insert(f.name + "_redirect").second) {
        return Err("frontend '" + f.name + "_redirect' (the redirect of '" + f.name + "') is declared twice");
      }
      static const std::set<std::uint16_t> kRedirectCodes = {301, 302, 303, 307, 308};
      if (!kRedirectCodes.contains(f.redirect_code)) {
        return Err("frontend '" + f.name + "': redirect_code must be 301, 302, 303, 307 or 308");
      }
    }
    if (!f.access_log.empty() && !valid_token(f.access_log)) {
      return Err("frontend '" + f.name + "': bad access_log target '" + f.access_log + "'");
    }
    if (f.default_backend.empty() && f.routes.empty()) {
      return Err("frontend '" + f.name + "': needs a default_backend or at least one route");
    }
    if (!f.default_backend.empty() && !names.contains(f.default_backend)) {
      return Err("frontend '" + f.name + "': default_backend '" + f.default_backend + "' is not a declared backend");
    }
    for (const auto& r : f.routes) {
      if (!valid_token(r.path_prefix) || r.path_prefix[0] != '/' || r.path_prefix.find('}') != std::string::npos) {
        return Err("frontend '" + f.name + "': route path_prefix '" + r.path_prefix +
                   "' must start with '/' and contain no spaces, quotes, '#' or '}'");
      }
      if (!names.contains(r.backend)) {
        return Err("frontend '" + f.name + "': route " + r.path_prefix + ": backend '" + r.backend +
                   "' is not a declared backend");
      }
    }
  }

  // Checked after the frontends, whose misspelt references are the likelier cause.
  for (const auto& b : spec.backends) {
    if (b.bind_port == 0 && !reachable.contains(b.name)) {
      return Err("backend '" + b.name + "': bind_port must be 1..65535 unless a shared frontend routes to it");
    }
  }

  std::string c;
  auto line = [&](const std::string& s) { c += s + "\n"; };
  line("# Generated by tide (coordinator/io/haproxy/config.cpp). Do not edit: tide rewrites it");
  line("# and restores slot membership itself after every start (no server-state-file).");
  line("global");
  line("  stats socket " + spec.stats_socket + " mode 600 level admin expose-fd listeners");
  if (!spec.stats_tcp.empty()) line("  stats socket ipv4@" + spec.stats_tcp + " level admin");
  line("  stats timeout " + std::to_string(spec.stats_timeout_s) + "s");
  line("  maxconn " + std::to_string(spec.maxconn));
  if (!spec.pid_file.empty()) line("  pidfile " + spec.pid_file);
  line("");
  line("defaults");
  line("  mode http");
  line("  option dontlognull");
  line("  timeout connect " + std::to_string(spec.timeout_connect_ms) + "ms");
  line("  timeout client " + std::to_string(spec.timeout_client_ms) + "ms");
  line("  timeout server " + std::to_string(spec.timeout_server_ms) + "ms");
  line("  timeout queue " + std::to_string(spec.timeout_queue_ms) + "ms");
  line("  timeout http-keep-alive " + std::to_string(spec.timeout_http_keep_alive_ms) + "ms");
  line("  timeout http-request " + std::to_string(spec.timeout_http_request_ms) + "ms");
  line("  # A request that could not reach a server (refused, reset before any");
  line("  # answer) is sent to another server: scale-in and restarts fail no request.");
  line("  retries " + std::to_string(spec.retries));
  line("  option redispatch 1");
  line("  retry-on conn-failure empty-response junk-response");
  if (spec.server_close) line("  option http-server-close");
  for (const auto& f : spec.frontends) {
    line("");
    line("frontend " + f.name);
    if (f.certificates.empty()) {
      line("  bind " + bind_target(f.bind_address, f.bind_port));
    } else {
      std::string bind = "  bind " + bind_target(f.bind_address, f.bind_port) + " ssl";
      for (const auto& certificate : f.certificates) bind += " crt " + certificate;
      bind += f.http2 ? " alpn h2,http/1.1" : " alpn http/1.1";
      line(bind);
    }
    if (f.timeout_client_ms != 0) line("  timeout client " + std::to_string(f.timeout_client_ms) + "ms");
    if (f.timeout_http_request_ms != 0) {
      line("  timeout http-request " + std::to_string(f.timeout_http_request_ms) + "ms");
    }
    if (!f.access_log.empty()) {
      // Raw: the line is HAProxy's HTTP log line alone, without a syslog header.
      line("  log " + f.access_log + " format raw local0 info");
      line("  option httplog");
    }
    if (f.forwarded_for) {
      // Appended to what the client sent; the protocol is replaced, never trusted.
      line("  option forwardfor");
      line("  http-request set-header X-Forwarded-Proto https if { ssl_fc }");
      line("  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }");
    }
    // Rules are evaluated in the order written: the first matching prefix wins.
    for (const auto& r : f.routes) line("  use_backend " + r.backend + " if { path_beg " + r.path_prefix + " }");
    if (!f.default_backend.empty()) line("  default_backend " + f.default_backend);
    if (f.redirect_port != 0) {
      // Plain HTTP answers with the same host (its port replaced) over https.
      const std::string port = f.bind_port == 443 ? "" : ":" + std::to_string(f.bind_port);
      line("");
      line("frontend " + f.name + "_redirect");
      line("  bind " + bind_target(f.bind_address, f.redirect_port));
      if (!f.access_log.empty()) {
        line("  log " + f.access_log + " format raw local0 info");
        line("  option httplog");
      }
      line("  http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]" + port + "%[pathq] code " +
           std::to_string(f.redirect_code));
    }
  }
  for (const auto& b : spec.backends) {
    if (b.bind_port != 0) {
      line("");
      line("frontend fe_" + b.name);
      line("  bind " + bind_target(b.bind_address, b.bind_port));
      line("  default_backend " + b.name);
    }
    line("");
    line("backend " + b.name);
    line("  balance " + b.balance);
    if (b.timeout_server_ms != 0) line("  timeout server " + std::to_string(b.timeout_server_ms) + "ms");
    if (b.timeout_connect_ms != 0) line("  timeout connect " + std::to_string(b.timeout_connect_ms) + "ms");
    if (b.timeout_queue_ms != 0) line("  timeout queue " + std::to_string(b.timeout_queue_ms) + "ms");
    std::string check;
    if (b.health_check) {
      line("  option httpchk GET " + b.check_path);
      check = " check inter " + std::to_string(b.check_inter_ms) + "ms rise " + std::to_string(b.check_rise) +
              " fall " + std::to_string(b.check_fall);
    }
    line("  # Slots are pre-declared: tide points them at instances at run time.");
    if (b.slots_in_use.empty()) {
      line("  server-template " + b.slot_prefix + " 1-" + std::to_string(b.slot_count) + " 127.0.0.1:1 disabled" +
           check);
      continue;
    }
    // The same servers (names and ids) as the template, some already in use.
    std::map<std::uint32_t, const SlotSpec*> in_use;
    for (const SlotSpec& slot : b.slots_in_use) in_use[slot.slot] = &slot;
    for (std::uint32_t n = 1; n <= b.slot_count; ++n) {
      auto it = in_use.find(n);
      const std::string name = "  server " + b.slot_prefix + std::to_string(n) + " ";
      if (it == in_use.end()) {
        line(name + "127.0.0.1:1 disabled" + check);
      } else {
        line(name + bind_target(it->second->address, it->second->port) + (it->second->ready ? "" : " disabled") +
             check);
      }
    }
  }
  return c;
}

}  // namespace tide::haproxy
