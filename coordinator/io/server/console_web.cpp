#include "coordinator/io/server/console_web.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <system_error>

#include <sodium.h>
#include <spdlog/spdlog.h>

namespace tide::coordinator {

namespace {

std::string hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4U];
    out += kHex[bytes[i] & 0x0FU];
  }
  return out;
}

std::string sha256_of(std::string_view text) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(text.data()),
                     text.size());
  return hex(digest.data(), digest.size());
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

ConsoleAssets ConsoleAssets::load(const std::filesystem::path& dir) {
  ConsoleAssets assets;
  assets.m_dir = dir;
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return assets;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in) {
      spdlog::warn("console: cannot read {}; not served", it->path().string());
      continue;
    }
    ConsoleAsset asset;
    asset.body = std::move(body).str();
    const std::string relative = it->path().lexically_relative(dir).generic_string();
    asset.content_type = content_type_for(relative);
    asset.etag = "\"" + sha256_of(asset.body).substr(0, 32) + "\"";
    assets.m_files.emplace(relative, std::move(asset));
  }
  if (ec) spdlog::warn("console: cannot list {}: {}", dir.string(), ec.message());
  return assets;
}

const ConsoleAsset* ConsoleAssets::find(std::string_view relative) const {
  const auto it = m_files.find(relative);
  return it == m_files.end() ? nullptr : &it->second;
}

std::string content_type_for(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
  }};
  for (const auto& [extension, type] : kTypes) {
    if (name.size() >= extension.size() &&
        name.substr(name.size() - extension.size()) == extension) {
      return std::string(type);
    }
  }
  return "application/octet-stream";
}

std::string console_not_built_page(const std::filesystem::path& dir) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tide "
         "console</title></head>\n"
         "<body><main><h1>The web console is not built</h1>\n"
         "<p>This tide-coordinator found no console files in <code>" +
         html_escape(dir.string()) +
         "</code>. They are built with Node.js and npm present at build time (see "
         "docs/console.md); "
         "the admin API and <code>tidectl</code> work without them.</p></main></body></html>\n";
}

std::string console_session_value(std::string_view token) {
  std::string input = "tide console session\n";
  input.append(token);
  return sha256_of(input);
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const std::size_t end = std::min(header.find(';'), header.size());
    std::string_view pair = header.substr(0, end);
    header.remove_prefix(std::min(end + 1, header.size()));
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos || pair.substr(0, equals) != name) continue;
    std::string_view value = pair.substr(equals + 1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    return std::string(value);
  }
  return std::nullopt;
}

std::string LoginCodes::issue(std::chrono::milliseconds ttl, Clock::time_point now) {
  std::array<unsigned char, 24> random{};
  randombytes_buf(random.data(), random.size());
  std::string code = hex(random.data(), random.size());
  std::lock_guard lock(m_mutex);
  std::erase_if(m_codes, [&](const auto& entry) { return entry.second <= now; });
  while (m_codes.size() >= kMaxOpen) {
    const auto oldest =
        std::min_element(m_codes.begin(), m_codes.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    m_codes.erase(oldest);
  }
  m_codes.emplace(code, now + ttl);
  return code;
}

bool LoginCodes::take(std::string_view code, Clock::time_point now) {
  std::lock_guard lock(m_mutex);
  const auto it = m_codes.find(code);
  if (it == m_codes.end()) return false;
  const bool fresh = it->second > now;
  m_codes.erase(it);
  return fresh;
}

std::size_t LoginCodes::open() const {
  std::lock_guard lock(m_mutex);
  return m_codes.size();
}

}  // namespace tide::coordinator
