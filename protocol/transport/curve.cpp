#include "protocol/transport/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <zmq.h>

#include "common/files/private_files.hpp"
#include "protocol/transport/detail.hpp"

namespace tide::transport {
namespace {

using Kind = TransportError::Kind;

TransportError file_error(const std::filesystem::path& path, std::string what, int err) {
  std::string detail = what + " " + path.string();
  if (err != 0) {
    detail += ": ";
    detail += std::strerror(err);
  }
  return TransportError{Kind::Io, std::move(detail), err};
}

}  // namespace

tl::expected<CurveKeyPair, TransportError> generate_curve_keypair() {
  char public_key[kZ85KeyLength + 1] = {};
  char secret_key[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return tl::unexpected(detail::make_error(Kind::Io, "zmq_curve_keypair", zmq_errno()));
  }
  return CurveKeyPair{public_key, secret_key};
}

tl::expected<std::string, TransportError> curve_public_from_secret(std::string_view secret_z85) {
  if (!is_valid_z85_key(secret_z85)) {
    return tl::unexpected(
        TransportError{Kind::InvalidArgument, "secret key is not a 40-character Z85 key", 0});
  }
  const std::string secret(secret_z85);
  char public_key[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(public_key, secret.c_str()) != 0) {
    return tl::unexpected(detail::make_error(Kind::Io, "zmq_curve_public", zmq_errno()));
  }
  return std::string(public_key);
}

bool is_valid_z85_key(std::string_view key) {
  if (key.size() != kZ85KeyLength) return false;
  const std::string text(key);
  std::uint8_t binary[kBinaryKeyLength] = {};
  return zmq_z85_decode(binary, text.c_str()) != nullptr;
}

std::string z85_from_binary_key(std::string_view binary_key) {
  if (binary_key.size() != kBinaryKeyLength) return {};
  char text[kZ85KeyLength + 1] = {};
  if (zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(binary_key.data()),
                     kBinaryKeyLength) == nullptr) {
    return {};
  }
  return std::string(text);
}

tl::expected<void, TransportError> save_keypair_file(const std::filesystem::path& path,
                                                     const CurveKeyPair& keys) {
  if (!is_valid_z85_key(keys.public_z85) || !is_valid_z85_key(keys.secret_z85)) {
    return tl::unexpected(TransportError{Kind::InvalidArgument, "invalid key pair", 0});
  }
  const std::string content = "public " + keys.public_z85 + "\nsecret " + keys.secret_z85 + "\n";
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  // O_EXCL is not used: a stale temporary from a crash is simply replaced.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tl::unexpected(file_error(tmp, "cannot create", errno));
  // The mode of an existing file is not changed by open(); force it.
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t written = 0;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return tl::unexpected(file_error(tmp, "cannot write", saved_errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return tl::unexpected(file_error(path, "cannot rename into", err));
  }
  return {};
}

tl::expected<CurveKeyPair, TransportError> load_keypair_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return tl::unexpected(file_error(path, "cannot stat", errno));
  if ((st.st_mode & 077) != 0) {
    return tl::unexpected(TransportError{
        Kind::InvalidArgument,
        "key file " + path.string() + " may be read by group or others; chmod 600 it", 0});
  }
  std::ifstream in(path);
  if (!in) return tl::unexpected(file_error(path, "cannot open", errno));
  CurveKeyPair keys;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string name, value, extra;
    fields >> name >> value >> extra;
    const bool valid_key = extra.empty() && is_valid_z85_key(value);
    if (name == "public" && valid_key) {
      keys.public_z85 = value;
    } else if (name == "secret" && valid_key) {
      keys.secret_z85 = value;
    } else {
      return tl::unexpected(TransportError{
          Kind::InvalidArgument,
          path.string() + ":" + std::to_string(line_no) +
              ": expected 'public <z85>' or 'secret <z85>'", 0});
    }
  }
  if (keys.public_z85.empty() || keys.secret_z85.empty()) {
    return tl::unexpected(TransportError{
        Kind::InvalidArgument, path.string() + ": needs a public and a secret line", 0});
  }
  auto derived = curve_public_from_secret(keys.secret_z85);
  if (!derived) return tl::unexpected(derived.error());
  if (*derived != keys.public_z85) {
    return tl::unexpected(TransportError{
        Kind::InvalidArgument, path.string() + ": public key does not match the secret key", 0});
  }
  return keys;
}

tl::expected<CurveKeyPair, TransportError> load_or_create_keypair_file(
    const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    // The file is this binary's own: a mode left open by an older version or
    // by hand is tightened (with a warning) rather than refused.
    if (auto tightened = files::tighten_mode(path, files::kPrivateFile); !tightened) {
      return tl::unexpected(TransportError{Kind::Io, tightened.error(), 0});
    }
    return load_keypair_file(path);
  }
  if (ec) return tl::unexpected(file_error(path, "cannot check", ec.value()));
  auto keys = generate_curve_keypair();
  if (!keys) return keys;
  if (auto saved = save_keypair_file(path, *keys); !saved) return tl::unexpected(saved.error());
  return keys;
}

}  // namespace tide::transport
