#include "coordinator/tidectl/client.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <httplib.h>

namespace tide::tidectl {
namespace {

// Why a connect failed, in the system's words: httplib reports only
// "Connection". One blocking connect (bounded by the time-out) finds out
// whether the name does not resolve, the port is closed or the host is
// unreachable.
std::string connect_failure(const EndpointUrl& url, int timeout_s) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(url.port);
  if (const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return "cannot resolve '" + url.host + "': " + ::gai_strerror(rc);
  }
  std::string reason = "unknown reason";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const timeval limit{timeout_s, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    const bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    reason = connected ? "it accepted a second attempt" : std::strerror(errno);
    ::close(fd);
    if (connected) break;
  }
  ::freeaddrinfo(found);
  return reason;
}

std::string transport_failure(httplib::Error error, const EndpointUrl& url, int timeout_s) {
  if (error == httplib::Error::Connection) {
    return "could not connect (" + connect_failure(url, timeout_s) +
           "); is tide-coordinator running, and is this its api.listen address?";
  }
  if (error == httplib::Error::ConnectionTimeout) return "no connection within " + std::to_string(timeout_s) + " s";
  if (error == httplib::Error::Read) return "the connection broke or timed out while waiting for the answer";
  if (error == httplib::Error::Write) return "the connection broke while sending the request";
  if (error == httplib::Error::SSLConnection || error == httplib::Error::SSLServerVerification) {
    return "the TLS handshake failed (" + httplib::to_string(error) + ")";
  }
  return httplib::to_string(error);
}

}  // namespace

tl::expected<EndpointUrl, std::string> parse_endpoint(const std::string& url) {
  const auto bad = [&](const std::string& why) {
    return tl::make_unexpected("invalid endpoint '" + url + "': " + why +
                               " (expected http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:7401)");
  };
  const std::size_t colon = url.find("://");
  if (colon == std::string::npos) return bad("no http:// or https://");
  EndpointUrl out;
  const std::string scheme = url.substr(0, colon);
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https, not " + scheme);
  const std::string rest = url.substr(colon + 3);
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  // A path ("https://ops.example.com/tide/", behind a proxy) prefixes every
  // request; a trailing slash means nothing.
  if (slash != std::string::npos) out.path_prefix = rest.substr(slash);
  while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
  if (out.path_prefix.find_first_of("?#") != std::string::npos) return bad("no query or fragment");
  std::string host = authority;
  const std::size_t port_colon = authority.rfind(':');
  const bool bracketed = authority.starts_with('[');
  if (port_colon != std::string::npos && (!bracketed || authority.find(']') < port_colon)) {
    const std::string port = authority.substr(port_colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return bad("the port must be 1..65535");
    }
    host = authority.substr(0, port_colon);
    out.port = std::stoi(port);
  } else {
    out.port = scheme == "https" ? 443 : 80;
  }
  if (host.empty() || host == "[]") return bad("no host");
  if (host.find_first_of(" @\t") != std::string::npos) return bad("not a host name or address");
  out.base = scheme + "://" + authority;
  out.host = bracketed ? host.substr(1, host.size() - 2) : host;
  return out;
}

Response call(const Endpoint& endpoint, const std::string& method, const std::string& request_path,
              const std::optional<nlohmann::json>& body) {
  Response response;
  const auto url = parse_endpoint(endpoint.url);
  if (!url) {
    response.transport_error = url.error();
    return response;
  }
  const std::string path = url->path_prefix + request_path;
  httplib::Client client(url->base);
  if (!client.is_valid()) {
    response.transport_error = "invalid endpoint '" + endpoint.url + "'";
    return response;
  }
  client.set_connection_timeout(endpoint.timeout_s, 0);
  client.set_read_timeout(endpoint.timeout_s, 0);
  client.set_write_timeout(endpoint.timeout_s, 0);
  if (!endpoint.token.empty()) client.set_bearer_token_auth(endpoint.token.c_str());

  const std::string payload = body ? body->dump() : std::string();
  const char* type = "application/json";
  const auto send = [&]() -> std::optional<httplib::Result> {
    if (method == "GET") return client.Get(path.c_str());
    if (method == "POST") return client.Post(path.c_str(), payload, type);
    if (method == "PUT") return client.Put(path.c_str(), payload, type);
    if (method == "PATCH") return client.Patch(path.c_str(), payload, type);
    if (method == "DELETE") return client.Delete(path.c_str());
    return std::nullopt;
  };
  auto sent = send();
  if (!sent) {
    response.transport_error = "unsupported method " + method;
    return response;
  }
  httplib::Result& result = *sent;
  if (!result) {
    response.transport_error = "cannot reach the coordinator at " + endpoint.url + ": " +
                               transport_failure(result.error(), *url, endpoint.timeout_s);
    return response;
  }
  // tide's API answers every request with a JSON object: anything else is
  // some other server at that address (a proxy's error page, a web server).
  nlohmann::json parsed = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    const std::string content_type = result->get_header_value("Content-Type");
    response.transport_error = "the server at " + endpoint.url + " is not a tide coordinator: it answered " +
                               method + " " + path + " with HTTP " + std::to_string(result->status) +
                               (result->body.empty() ? " and no body" : " and a body that is not JSON") +
                               (content_type.empty() ? "" : " (" + content_type + ")");
    return response;
  }
  response.status = result->status;
  response.body = std::move(parsed);
  return response;
}

std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4U];
      out += kHex[byte & 0x0FU];
    }
  }
  return out;
}

}  // namespace tide::tidectl
