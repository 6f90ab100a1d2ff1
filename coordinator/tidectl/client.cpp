#include "coordinator/tidectl/client.hpp"

#include <httplib.h>

namespace tide::tidectl {

Response call(const Endpoint& endpoint, const std::string& method, const std::string& path,
              const std::optional<nlohmann::json>& body) {
  Response response;
  httplib::Client client(endpoint.url);
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
                               httplib::to_string(result.error());
    return response;
  }
  response.status = result->status;
  if (!result->body.empty()) {
    response.body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
    if (response.body.is_discarded()) response.body = nlohmann::json{{"raw", result->body}};
  }
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
