// tidectl's HTTP client for the coordinator's admin API.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace tide::tidectl {

struct Endpoint {
  std::string url = "http://127.0.0.1:7401";  // scheme://host:port
  std::string token;                          // bearer token; empty = none
  int timeout_s = 30;
};

struct Response {
  int status = 0;           // HTTP status; 0 when the coordinator could not be reached
  nlohmann::json body;      // parsed JSON body (null when there was none)
  std::string transport_error;  // set when status == 0
};

// An endpoint URL split for httplib: "scheme://host:port" and the path that
// prefixes every request ("" or e.g. "/tide"; a trailing slash is dropped).
struct EndpointUrl {
  std::string base;
  std::string path_prefix;
  std::string host;  // without brackets
  int port = 0;
};
// Fails with a message naming what is wrong and the expected form.
[[nodiscard]] tl::expected<EndpointUrl, std::string> parse_endpoint(const std::string& url);

// One request; never throws. `body` is sent as JSON when present.
[[nodiscard]] Response call(const Endpoint& endpoint, const std::string& method,
                            const std::string& path,
                            const std::optional<nlohmann::json>& body = std::nullopt);

// "a b" -> "a%20b": for ids and query values placed in a URL.
[[nodiscard]] std::string url_encode(const std::string& text);

}  // namespace tide::tidectl
