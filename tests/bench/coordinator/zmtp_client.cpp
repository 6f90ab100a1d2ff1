#include "tests/bench/coordinator/zmtp_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace tide::zmtp {

std::string_view to_string(Error::Kind kind) {
  switch (kind) {
    case Error::Kind::InvalidArgument: return "invalid_argument";
    case Error::Kind::NotReady: return "not_ready";
    case Error::Kind::WouldBlock: return "would_block";
    case Error::Kind::TooLarge: return "too_large";
    case Error::Kind::Protocol: return "protocol";
    case Error::Kind::Handshake: return "handshake";
    case Error::Kind::Closed: return "closed";
    case Error::Kind::Io: return "io";
  }
  return "unknown";
}

namespace {

// ZMTP 3.0 greeting: signature (10) + version (2) + mechanism (20) + as-server (1) + filler (31).
constexpr std::size_t kGreetingBytes = 64;
constexpr std::size_t kMechanismOffset = 12;
constexpr std::size_t kMechanismBytes = 20;

// Frame flags (23/ZMTP): bit 0 MORE, bit 1 LONG (8-byte size), bit 2 COMMAND.
constexpr std::uint8_t kFlagMore = 0x01;
constexpr std::uint8_t kFlagLong = 0x02;
constexpr std::uint8_t kFlagCommand = 0x04;
constexpr std::uint8_t kFlagReserved = 0xF8;

// Flags inside a CURVE MESSAGE box (26/CurveZMQ; libzmq adds COMMAND for
// ZMTP 3.1 commands such as PING that travel encrypted).
constexpr std::uint8_t kBoxMore = 0x01;
constexpr std::uint8_t kBoxCommand = 0x02;

constexpr std::size_t kMaxPartsPerMessage = 1024;
constexpr std::size_t kCookieBytes = 96;
constexpr std::size_t kMac = crypto_box_MACBYTES;  // 16
static_assert(crypto_box_PUBLICKEYBYTES == 32 && crypto_box_SECRETKEYBYTES == 32 && crypto_box_NONCEBYTES == 24);

void ensure_sodium() {
  // sodium_init() is idempotent and thread-safe; -1 only if no entropy source.
  [[maybe_unused]] static const int initialised = sodium_init();
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

void put_u64(std::uint8_t* out, std::uint64_t value) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>(value & 0xFFU);
    value >>= 8U;
  }
}

std::uint64_t get_u64(const std::uint8_t* in) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8U) | in[i];
  return value;
}

std::uint32_t get_u32(const std::uint8_t* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8U) | in[i];
  return value;
}

void append(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

void append(std::vector<std::uint8_t>& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

// A 24-byte nonce: a 16-byte text prefix and an 8-byte big-endian counter
// (short nonces), or an 8-byte prefix and 16 random bytes (long nonces).
std::array<std::uint8_t, crypto_box_NONCEBYTES> short_nonce(std::string_view prefix16, std::uint64_t counter) {
  std::array<std::uint8_t, crypto_box_NONCEBYTES> nonce{};
  std::memcpy(nonce.data(), prefix16.data(), 16);
  put_u64(nonce.data() + 16, counter);
  return nonce;
}

std::array<std::uint8_t, crypto_box_NONCEBYTES> long_nonce(std::string_view prefix8, const std::uint8_t* random16) {
  std::array<std::uint8_t, crypto_box_NONCEBYTES> nonce{};
  std::memcpy(nonce.data(), prefix8.data(), 8);
  std::memcpy(nonce.data() + 8, random16, 16);
  return nonce;
}

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace

// ---- Z85 and keys ---------------------------------------------------------------

std::optional<Key> z85_decode_key(std::string_view text) {
  if (text.size() != 40) return std::nullopt;
  Key key{};
  for (std::size_t block = 0; block < 8; ++block) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 5; ++i) {
      const auto digit = kZ85Alphabet.find(text[block * 5 + i]);
      if (digit == std::string_view::npos) return std::nullopt;
      value = value * 85 + digit;
    }
    if (value > 0xFFFFFFFFULL) return std::nullopt;
    for (std::size_t i = 0; i < 4; ++i) {
      key[block * 4 + i] = static_cast<std::uint8_t>(value >> (8 * (3 - i)));
    }
  }
  return key;
}

std::string z85_encode_key(const Key& key) {
  std::string text;
  text.reserve(40);
  for (std::size_t block = 0; block < 8; ++block) {
    const std::uint32_t value = get_u32(key.data() + block * 4);
    std::uint32_t divisor = 85U * 85U * 85U * 85U;
    for (std::size_t i = 0; i < 5; ++i) {
      text.push_back(kZ85Alphabet[(value / divisor) % 85U]);
      divisor /= 85U;
    }
  }
  return text;
}

KeyPair generate_keypair() {
  ensure_sodium();
  KeyPair pair;
  crypto_box_keypair(pair.public_key.data(), pair.secret_key.data());
  return pair;
}

// ---- Session ----------------------------------------------------------------------

struct Session::Curve {
  CurveOptions keys;
  KeyPair ephemeral;                                        // C', c'
  Key server_ephemeral{};                                   // S'
  std::array<std::uint8_t, crypto_box_BEFORENMBYTES> shared{};  // precomputed C'/S' box key
  std::uint64_t nonce = 1;       // next short nonce we send (HELLO, INITIATE, MESSAGE...)
  std::uint64_t peer_nonce = 0;  // last short nonce the server sent
  ~Curve() {
    sodium_memzero(ephemeral.secret_key.data(), ephemeral.secret_key.size());
    sodium_memzero(shared.data(), shared.size());
    sodium_memzero(keys.client.secret_key.data(), keys.client.secret_key.size());
  }
};

Session::Session(SessionOptions options) : m_options(std::move(options)) {
  ensure_sodium();
  if (m_options.routing_id.size() > 255) {
    (void)fail(Error::Kind::InvalidArgument, "routing id longer than 255 bytes");
    return;
  }
  if (m_options.curve) {
    m_curve = std::make_unique<Curve>();
    m_curve->keys = *m_options.curve;
    m_curve->ephemeral = generate_keypair();
    sodium_memzero(m_options.curve->client.secret_key.data(), m_options.curve->client.secret_key.size());
  }
  // The greeting. libzmq fills the signature's padding with the ZMTP 1.0
  // identity length + 1 (8 bytes, big-endian); we do the same.
  std::array<std::uint8_t, kGreetingBytes> greeting{};
  greeting[0] = 0xFF;
  put_u64(greeting.data() + 1, m_options.routing_id.size() + 1);
  greeting[9] = 0x7F;
  greeting[10] = 3;  // version 3.0
  greeting[11] = 0;
  const std::string_view mechanism = m_curve ? "CURVE" : "NULL";
  std::memcpy(greeting.data() + kMechanismOffset, mechanism.data(), mechanism.size());
  greeting[32] = 0;  // as-server: we are the client
  append(m_out, greeting);
}

Session::~Session() = default;

tl::expected<void, Error> Session::fail(Error::Kind kind, std::string detail) {
  if (m_state != State::Failed) {
    m_state = State::Failed;
    m_error = Error{kind, std::move(detail)};
  }
  return tl::unexpected(m_error);
}

std::span<const std::uint8_t> Session::pending_output() const {
  return std::span<const std::uint8_t>(m_out).subspan(m_out_offset);
}

void Session::consume_output(std::size_t bytes) {
  m_out_offset = std::min(m_out.size(), m_out_offset + bytes);
  if (m_out_offset == m_out.size()) {
    m_out.clear();
    m_out_offset = 0;
  } else if (m_out_offset > 64U * 1024U && m_out_offset * 2 > m_out.size()) {
    m_out.erase(m_out.begin(), m_out.begin() + static_cast<std::ptrdiff_t>(m_out_offset));
    m_out_offset = 0;
  }
}

tl::expected<void, Error> Session::feed(std::span<const std::uint8_t> bytes, std::vector<Message>& messages) {
  if (m_state == State::Failed) return tl::unexpected(m_error);
  // Parse straight from `bytes` when nothing is left over (the common case);
  // only an incomplete tail is copied.
  const bool direct = m_in_offset == m_in.size();
  if (direct) {
    m_in.clear();
    m_in_offset = 0;
  } else {
    append(m_in, bytes);
  }
  const std::span<const std::uint8_t> data =
      direct ? bytes : std::span<const std::uint8_t>(m_in).subspan(m_in_offset);
  std::size_t pos = 0;
  tl::expected<void, Error> result;
  while (result && m_state != State::Failed) {
    const auto rest = data.subspan(pos);
    if (m_state == State::ExpectGreeting) {
      // Like libzmq, judge the signature as soon as its bytes arrive: a
      // non-ZMTP server may send less than a greeting and wait.
      if ((!rest.empty() && rest[0] != 0xFF) || (rest.size() >= 10 && (rest[9] & 0x01U) == 0)) {
        result = fail(Error::Kind::Protocol, "the peer's greeting has no ZMTP signature");
        break;
      }
      if (rest.size() < kGreetingBytes) break;
      result = on_greeting(rest.first(kGreetingBytes));
      pos += kGreetingBytes;
      continue;
    }
    if (rest.size() < 2) break;
    const std::uint8_t flags = rest[0];
    if ((flags & kFlagReserved) != 0) {
      result = fail(Error::Kind::Protocol, "frame with reserved flag bits set");
      break;
    }
    const std::size_t header = (flags & kFlagLong) != 0 ? 9 : 2;
    if (rest.size() < header) break;
    const std::uint64_t size = (flags & kFlagLong) != 0 ? get_u64(rest.data() + 1) : rest[1];
    // A CURVE box adds its own overhead around the payload.
    const std::uint64_t limit = m_options.max_frame_bytes + (m_curve ? 64U : 0U);
    if (size > limit) {
      result = fail(Error::Kind::TooLarge, "inbound frame of " + std::to_string(size) + " bytes");
      break;
    }
    if (rest.size() - header < size) break;
    result = on_frame(flags, rest.subspan(header, static_cast<std::size_t>(size)), messages);
    pos += header + static_cast<std::size_t>(size);
  }
  if (direct) {
    if (pos < bytes.size()) append(m_in, bytes.subspan(pos));
  } else {
    m_in_offset += pos;
    if (m_in_offset == m_in.size()) {
      m_in.clear();
      m_in_offset = 0;
    }
  }
  return result;
}

tl::expected<void, Error> Session::on_greeting(std::span<const std::uint8_t> greeting) {
  if (greeting[0] != 0xFF || (greeting[9] & 0x01U) == 0) {
    return fail(Error::Kind::Protocol, "the peer's greeting has no ZMTP signature");
  }
  if (greeting[10] < 3) {
    return fail(Error::Kind::Protocol, "the peer speaks ZMTP " + std::to_string(greeting[10]) + ", not 3.x");
  }
  const auto* name = reinterpret_cast<const char*>(greeting.data() + kMechanismOffset);
  const std::string_view mechanism(name, strnlen(name, kMechanismBytes));
  const std::string_view ours = m_curve ? "CURVE" : "NULL";
  if (mechanism != ours) {
    return fail(Error::Kind::Handshake,
                "mechanism mismatch: we speak " + std::string(ours) + ", the server " + std::string(mechanism));
  }
  if (m_curve) {
    if (!write_hello()) return fail(Error::Kind::Handshake, "the server's CURVE key is not usable");
    m_state = State::ExpectWelcome;
  } else {
    write_ready_null();
    m_state = State::ExpectNullReady;
  }
  return {};
}

tl::expected<void, Error> Session::on_frame(std::uint8_t flags, std::span<const std::uint8_t> body,
                                            std::vector<Message>& messages) {
  const bool command = (flags & kFlagCommand) != 0;
  switch (m_state) {
    case State::ExpectGreeting:
    case State::Failed: return fail(Error::Kind::Protocol, "frame in an unexpected state");
    case State::ExpectNullReady:
    case State::ExpectWelcome:
    case State::ExpectCurveReady:
      if (!command) return fail(Error::Kind::Protocol, "a message frame before the handshake finished");
      return on_command(body);
    case State::Ready:
      // libzmq sends CURVE MESSAGE boxes as ordinary frames (the box holds
      // the MORE and COMMAND flags); a peer that marks them COMMAND is fine too.
      if (m_curve) return on_curve_message(body, messages);
      if (command) return on_command(body);
      return on_data((flags & kFlagMore) != 0, body, messages);
  }
  return fail(Error::Kind::Protocol, "unreachable state");
}

tl::expected<void, Error> Session::on_command(std::span<const std::uint8_t> body) {
  if (body.empty() || body.size() < 1U + body[0]) return fail(Error::Kind::Protocol, "malformed command frame");
  const std::string_view name(reinterpret_cast<const char*>(body.data() + 1), body[0]);
  const auto data = body.subspan(1U + body[0]);
  if (name == "ERROR") {
    // 23/ZMTP: a 1-byte reason length and the reason.
    std::string reason;
    if (!data.empty() && data.size() >= 1U + data[0]) {
      reason.assign(reinterpret_cast<const char*>(data.data() + 1), data[0]);
    }
    return fail(Error::Kind::Handshake, "the server sent ERROR '" + reason + "'");
  }
  switch (m_state) {
    case State::ExpectNullReady:
      if (name != "READY") return fail(Error::Kind::Protocol, "expected READY, got " + std::string(name));
      if (auto parsed = parse_metadata(data); !parsed) return parsed;
      m_state = State::Ready;
      return {};
    case State::ExpectWelcome:
      if (name != "WELCOME") return fail(Error::Kind::Protocol, "expected WELCOME, got " + std::string(name));
      return on_welcome(data);
    case State::ExpectCurveReady:
      if (name != "READY") return fail(Error::Kind::Protocol, "expected READY, got " + std::string(name));
      return on_curve_ready(data);
    case State::Ready:
      if (name == "PING") {
        // 37/ZMTP 3.1: PING = TTL (2 bytes) + context (0..16 bytes); PONG echoes the context.
        if (data.size() < 2 || data.size() > 18) return fail(Error::Kind::Protocol, "malformed PING");
        if (m_curve) {
          std::vector<std::uint8_t> pong;
          pong.push_back(4);
          append(pong, std::string_view("PONG"));
          append(pong, data.subspan(2));
          write_curve_message(kBoxCommand, pong);
        } else {
          write_command("PONG", data.subspan(2));
        }
      }
      return {};  // PONG and unknown commands are ignored, as 37/ZMTP says
    case State::ExpectGreeting:
    case State::Failed: break;
  }
  return fail(Error::Kind::Protocol, "command in an unexpected state");
}

tl::expected<void, Error> Session::on_data(bool more, std::span<const std::uint8_t> data,
                                           std::vector<Message>& messages) {
  if (m_partial.size() >= kMaxPartsPerMessage) return fail(Error::Kind::Protocol, "too many frames in a message");
  m_partial.emplace_back(data.begin(), data.end());
  if (!more) {
    messages.push_back(std::move(m_partial));
    m_partial.clear();
  }
  return {};
}

tl::expected<void, Error> Session::parse_metadata(std::span<const std::uint8_t> properties) {
  // Property = name-size (1) + name + value-size (4, big-endian) + value.
  std::size_t pos = 0;
  while (pos < properties.size()) {
    const std::size_t name_size = properties[pos];
    if (name_size == 0 || pos + 1 + name_size + 4 > properties.size()) {
      return fail(Error::Kind::Protocol, "malformed READY metadata");
    }
    std::string name(reinterpret_cast<const char*>(properties.data() + pos + 1), name_size);
    pos += 1 + name_size;
    const std::size_t value_size = get_u32(properties.data() + pos);
    pos += 4;
    if (value_size > properties.size() - pos) return fail(Error::Kind::Protocol, "malformed READY metadata");
    m_peer_metadata[std::move(name)].assign(reinterpret_cast<const char*>(properties.data() + pos), value_size);
    pos += value_size;
  }
  // A DEALER may talk to a ROUTER, a DEALER or a REP (28/REQREP).
  const auto type = m_peer_metadata.find("Socket-Type");
  if (type == m_peer_metadata.end()) return fail(Error::Kind::Handshake, "the server's READY has no Socket-Type");
  if (type->second != "ROUTER" && type->second != "DEALER" && type->second != "REP") {
    return fail(Error::Kind::Handshake, "a DEALER cannot talk to a " + type->second + " socket");
  }
  return {};
}

std::vector<std::uint8_t> Session::own_metadata() const {
  // What a libzmq DEALER announces: its type and its routing id.
  std::vector<std::uint8_t> out;
  const auto property = [&out](std::string_view name, std::string_view value) {
    out.push_back(static_cast<std::uint8_t>(name.size()));
    append(out, name);
    put_u32(out, static_cast<std::uint32_t>(value.size()));
    append(out, value);
  };
  property("Socket-Type", "DEALER");
  property("Identity", m_options.routing_id);
  return out;
}

void Session::write_frame(std::uint8_t flags, std::span<const std::uint8_t> body) {
  if (body.size() > 255) {
    m_out.push_back(static_cast<std::uint8_t>(flags | kFlagLong));
    std::uint8_t size[8];
    put_u64(size, body.size());
    m_out.insert(m_out.end(), size, size + 8);
  } else {
    m_out.push_back(flags);
    m_out.push_back(static_cast<std::uint8_t>(body.size()));
  }
  append(m_out, body);
}

void Session::write_command(std::string_view name, std::span<const std::uint8_t> data) {
  std::vector<std::uint8_t> body;
  body.reserve(1 + name.size() + data.size());
  body.push_back(static_cast<std::uint8_t>(name.size()));
  append(body, name);
  append(body, data);
  write_frame(kFlagCommand, body);
}

void Session::write_ready_null() { write_command("READY", own_metadata()); }

bool Session::write_hello() {
  // HELLO = version 1.0 + 72 bytes of padding (anti-amplification) + C' +
  // short nonce + Box[64 zero bytes](C'->S).
  Curve& c = *m_curve;
  std::vector<std::uint8_t> data(2 + 72 + 32 + 8 + 64 + kMac, 0);
  data[0] = 1;
  data[1] = 0;
  std::memcpy(data.data() + 74, c.ephemeral.public_key.data(), 32);
  const std::uint64_t n = c.nonce++;
  put_u64(data.data() + 106, n);
  const std::array<std::uint8_t, 64> zeros{};
  const auto nonce = short_nonce("CurveZMQHELLO---", n);
  // libsodium refuses a low-order (unusable) public key.
  if (crypto_box_easy(data.data() + 114, zeros.data(), zeros.size(), nonce.data(), c.keys.server_public.data(),
                      c.ephemeral.secret_key.data()) != 0) {
    return false;
  }
  write_command("HELLO", data);
  return true;
}

tl::expected<void, Error> Session::on_welcome(std::span<const std::uint8_t> data) {
  // WELCOME = long nonce (16) + Box[S' + cookie](S->C') (16 + 32 + 96).
  Curve& c = *m_curve;
  if (data.size() != 16 + kMac + 32 + kCookieBytes) return fail(Error::Kind::Protocol, "malformed WELCOME");
  const auto nonce = long_nonce("WELCOME-", data.data());
  std::array<std::uint8_t, 32 + kCookieBytes> plain{};
  if (crypto_box_open_easy(plain.data(), data.data() + 16, data.size() - 16, nonce.data(),
                           c.keys.server_public.data(), c.ephemeral.secret_key.data()) != 0) {
    return fail(Error::Kind::Handshake, "cannot open the WELCOME box (wrong server key?)");
  }
  std::memcpy(c.server_ephemeral.data(), plain.data(), 32);
  if (crypto_box_beforenm(c.shared.data(), c.server_ephemeral.data(), c.ephemeral.secret_key.data()) != 0) {
    return fail(Error::Kind::Handshake, "the server's short-term key is unusable");
  }
  const bool written = write_initiate(std::span<const std::uint8_t>(plain).subspan(32, kCookieBytes));
  sodium_memzero(plain.data(), plain.size());
  if (!written) return fail(Error::Kind::Handshake, "cannot make the INITIATE vouch");
  m_state = State::ExpectCurveReady;
  return {};
}

bool Session::write_initiate(std::span<const std::uint8_t> cookie) {
  // INITIATE = cookie + short nonce + Box[C + vouch + metadata](C'->S'),
  // vouch = long nonce (16) + Box[C' + S](C->S').
  Curve& c = *m_curve;
  std::array<std::uint8_t, 16 + kMac + 64> vouch{};
  randombytes_buf(vouch.data(), 16);
  std::array<std::uint8_t, 64> vouch_plain{};
  std::memcpy(vouch_plain.data(), c.ephemeral.public_key.data(), 32);
  std::memcpy(vouch_plain.data() + 32, c.keys.server_public.data(), 32);
  const auto vouch_nonce = long_nonce("VOUCH---", vouch.data());
  if (crypto_box_easy(vouch.data() + 16, vouch_plain.data(), vouch_plain.size(), vouch_nonce.data(),
                      c.server_ephemeral.data(), c.keys.client.secret_key.data()) != 0) {
    return false;
  }

  std::vector<std::uint8_t> plain;
  append(plain, c.keys.client.public_key);
  append(plain, vouch);
  append(plain, own_metadata());

  std::vector<std::uint8_t> data(kCookieBytes + 8 + kMac + plain.size());
  std::memcpy(data.data(), cookie.data(), kCookieBytes);
  const std::uint64_t n = c.nonce++;
  put_u64(data.data() + kCookieBytes, n);
  const auto nonce = short_nonce("CurveZMQINITIATE", n);
  crypto_box_easy_afternm(data.data() + kCookieBytes + 8, plain.data(), plain.size(), nonce.data(), c.shared.data());
  write_command("INITIATE", data);
  return true;
}

tl::expected<void, Error> Session::on_curve_ready(std::span<const std::uint8_t> data) {
  // READY = short nonce + Box[metadata](S'->C').
  Curve& c = *m_curve;
  if (data.size() < 8 + kMac) return fail(Error::Kind::Protocol, "malformed READY");
  const std::uint64_t n = get_u64(data.data());
  const auto nonce = short_nonce("CurveZMQREADY---", n);
  std::vector<std::uint8_t> plain(data.size() - 8 - kMac);
  if (crypto_box_open_easy_afternm(plain.data(), data.data() + 8, data.size() - 8, nonce.data(), c.shared.data()) !=
      0) {
    return fail(Error::Kind::Handshake, "cannot open the READY box");
  }
  c.peer_nonce = n;
  if (auto parsed = parse_metadata(plain); !parsed) return parsed;
  m_state = State::Ready;
  return {};
}

tl::expected<void, Error> Session::on_curve_message(std::span<const std::uint8_t> body,
                                                    std::vector<Message>& messages) {
  // MESSAGE = "\x07MESSAGE" + short nonce + Box[flags + data](S'->C').
  Curve& c = *m_curve;
  constexpr std::string_view kName = "\x07MESSAGE";
  if (body.size() < kName.size() + 8 + kMac + 1 || std::memcmp(body.data(), kName.data(), kName.size()) != 0) {
    // ERROR is the only plaintext command a CURVE server may still send.
    if (!body.empty() && body.size() >= 6 && std::memcmp(body.data(), "\x05""ERROR", 6) == 0) return on_command(body);
    return fail(Error::Kind::Protocol, "expected a CURVE MESSAGE");
  }
  const std::uint64_t n = get_u64(body.data() + kName.size());
  if (n <= c.peer_nonce) return fail(Error::Kind::Protocol, "CURVE MESSAGE nonce is not increasing");
  const auto box = body.subspan(kName.size() + 8);
  std::vector<std::uint8_t> plain(box.size() - kMac);
  const auto nonce = short_nonce("CurveZMQMESSAGES", n);
  if (crypto_box_open_easy_afternm(plain.data(), box.data(), box.size(), nonce.data(), c.shared.data()) != 0) {
    return fail(Error::Kind::Protocol, "cannot open a CURVE MESSAGE box");
  }
  c.peer_nonce = n;
  const std::uint8_t flags = plain[0];
  const auto payload = std::span<const std::uint8_t>(plain).subspan(1);
  if ((flags & kBoxCommand) != 0) return on_command(payload);
  return on_data((flags & kBoxMore) != 0, payload, messages);
}

void Session::write_curve_message(std::uint8_t inner_flags, std::span<const std::uint8_t> data) {
  Curve& c = *m_curve;
  constexpr std::string_view kName = "\x07MESSAGE";
  const std::size_t box_bytes = kMac + 1 + data.size();
  const std::size_t body_bytes = kName.size() + 8 + box_bytes;
  // Encrypt straight into the output buffer: header, name, nonce, box.
  const bool long_frame = body_bytes > 255;
  const std::size_t start = m_out.size();
  m_out.resize(start + (long_frame ? 9 : 2) + body_bytes);
  std::uint8_t* out = m_out.data() + start;
  if (long_frame) {
    out[0] = kFlagLong;
    put_u64(out + 1, body_bytes);
    out += 9;
  } else {
    out[0] = 0;
    out[1] = static_cast<std::uint8_t>(body_bytes);
    out += 2;
  }
  std::memcpy(out, kName.data(), kName.size());
  const std::uint64_t n = c.nonce++;
  put_u64(out + kName.size(), n);
  std::vector<std::uint8_t> plain;
  plain.reserve(1 + data.size());
  plain.push_back(inner_flags);
  append(plain, data);
  const auto nonce = short_nonce("CurveZMQMESSAGEC", n);
  crypto_box_easy_afternm(out + kName.size() + 8, plain.data(), plain.size(), nonce.data(), c.shared.data());
}

tl::expected<void, Error> Session::send(std::span<const std::span<const std::uint8_t>> frames) {
  if (m_state == State::Failed) return tl::unexpected(m_error);
  if (m_state != State::Ready) return tl::unexpected(Error{Error::Kind::NotReady, "the handshake is not done"});
  if (frames.empty()) return tl::unexpected(Error{Error::Kind::InvalidArgument, "a message needs a frame"});
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const bool more = i + 1 < frames.size();
    if (m_curve) {
      write_curve_message(more ? kBoxMore : 0, frames[i]);
    } else {
      write_frame(more ? kFlagMore : 0, frames[i]);
    }
  }
  return {};
}

tl::expected<void, Error> Session::send(std::span<const std::uint8_t> frame) {
  const std::span<const std::uint8_t> frames[1] = {frame};
  return send(std::span<const std::span<const std::uint8_t>>(frames));
}

// ---- Pool -------------------------------------------------------------------------

struct Pool::Connection {
  Connection(ConnectionId connection_id, int descriptor, std::uint64_t user_tag, SessionOptions options)
      : id(connection_id), fd(descriptor), tag(user_tag), session(std::move(options)) {}
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionId id;
  int fd;
  std::uint64_t tag;
  Session session;
  bool connecting = true;    // TCP connect not finished
  bool want_write = true;    // EPOLLOUT registered
  bool ready_told = false;   // on_ready called
};

namespace {

tl::expected<sockaddr_in, Error> parse_endpoint(std::string_view endpoint) {
  constexpr std::string_view kScheme = "tcp://";
  const auto bad = [&endpoint](std::string_view why) {
    return tl::unexpected(Error{Error::Kind::InvalidArgument,
                                "endpoint '" + std::string(endpoint) + "': " + std::string(why)});
  };
  if (endpoint.substr(0, kScheme.size()) != kScheme) return bad("must start with tcp://");
  const std::string_view rest = endpoint.substr(kScheme.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return bad("needs a port");
  std::string host(rest.substr(0, colon));
  const std::string_view port_text = rest.substr(colon + 1);
  unsigned port = 0;
  if (port_text.empty() || port_text.size() > 5) return bad("bad port");
  for (const char ch : port_text) {
    if (ch < '0' || ch > '9') return bad("bad port");
    port = port * 10 + static_cast<unsigned>(ch - '0');
  }
  if (port == 0 || port > 65535) return bad("bad port");
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) return bad("host must be an IPv4 address");
  return address;
}

Error errno_error(std::string_view what, int err) {
  return Error{Error::Kind::Io, std::string(what) + ": " + std::strerror(err)};
}

}  // namespace

Pool::Pool(PoolOptions options, PoolCallbacks callbacks)
    : m_options(options), m_callbacks(std::move(callbacks)), m_epoll_fd(::epoll_create1(EPOLL_CLOEXEC)) {
  ensure_sodium();
}

Pool::~Pool() {
  close_all();
  if (m_epoll_fd >= 0) ::close(m_epoll_fd);
}

tl::expected<ConnectionId, Error> Pool::connect(std::string_view endpoint, SessionOptions options,
                                                std::uint64_t tag) {
  if (m_epoll_fd < 0) return tl::unexpected(errno_error("epoll_create1", errno));
  auto address = parse_endpoint(endpoint);
  if (!address) return tl::unexpected(address.error());
  if (options.routing_id.size() > 255) {
    return tl::unexpected(Error{Error::Kind::InvalidArgument, "routing id longer than 255 bytes"});
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(errno_error("socket", errno));
  // libzmq sets TCP_NODELAY: small frames go out at once.
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const ConnectionId id = m_next_id++;
  auto connection = std::make_unique<Connection>(id, fd, tag, std::move(options));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof *address) != 0 && errno != EINPROGRESS) {
    return tl::unexpected(errno_error("connect " + std::string(endpoint), errno));
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT;
  event.data.u64 = id;
  if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
    return tl::unexpected(errno_error("epoll_ctl", errno));
  }
  m_connections.emplace(id, std::move(connection));
  if (m_options.handshake_timeout_ms > 0) m_deadlines.emplace_back(now_ms() + m_options.handshake_timeout_ms, id);
  return id;
}

void Pool::update_interest(Connection& connection) {
  const bool want = connection.connecting || !connection.session.pending_output().empty();
  if (want == connection.want_write) return;
  epoll_event event{};
  event.events = EPOLLIN | (want ? static_cast<std::uint32_t>(EPOLLOUT) : 0U);
  event.data.u64 = connection.id;  // EPOLL_CTL_MOD replaces the data too
  if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_MOD, connection.fd, &event) == 0) connection.want_write = want;
}

void Pool::flush(Connection& connection) {
  // Errors are left for the next poll(): the socket then reports EPOLLERR or
  // EOF and the connection is failed there, outside the caller's send().
  while (!connection.connecting) {
    const auto pending = connection.session.pending_output();
    if (pending.empty()) break;
    const ssize_t n = ::send(connection.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      connection.session.consume_output(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
}

void Pool::fail(ConnectionId id, Error error) {
  const auto it = m_connections.find(id);
  if (it == m_connections.end()) return;
  const std::uint64_t tag = it->second->tag;
  m_connections.erase(it);  // closes the fd, which also leaves epoll
  if (m_callbacks.on_closed) m_callbacks.on_closed(id, tag, error);
}

void Pool::handle_event(ConnectionId id, std::uint32_t events) {
  auto it = m_connections.find(id);
  if (it == m_connections.end()) return;  // closed by an earlier callback in this batch
  Connection* connection = it->second.get();
  if (connection->connecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t length = sizeof err;
    if (::getsockopt(connection->fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) err = errno;
    if (err != 0) return fail(id, errno_error("connect", err));
    connection->connecting = false;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
    std::array<std::uint8_t, 16384> buffer;
    std::vector<Message> messages;
    messages.swap(m_scratch_messages);
    messages.clear();
    bool alive = true;
    for (;;) {
      const ssize_t n = ::read(connection->fd, buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail(id, errno_error("read", errno));
        alive = false;
        break;
      }
      if (n == 0) {
        const bool during_handshake = !connection->session.ready();
        fail(id, during_handshake
                     ? Error{Error::Kind::Handshake, "the server closed the connection during the handshake"}
                     : Error{Error::Kind::Closed, "the server closed the connection"});
        alive = false;
        break;
      }
      auto fed = connection->session.feed(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)),
                                          messages);
      if (!fed) {
        fail(id, fed.error());
        alive = false;
        break;
      }
      if (static_cast<std::size_t>(n) < buffer.size()) break;  // drained; level-triggered epoll tells us again
    }
    if (alive) {
      flush(*connection);  // handshake replies, PONGs
      if (connection->session.ready() && !connection->ready_told) {
        connection->ready_told = true;
        if (m_callbacks.on_ready) m_callbacks.on_ready(id, connection->tag);
      }
      for (const Message& message : messages) {
        it = m_connections.find(id);
        if (it == m_connections.end()) break;
        if (m_callbacks.on_message) m_callbacks.on_message(id, it->second->tag, message);
      }
    }
    messages.clear();
    m_scratch_messages.swap(messages);
    it = m_connections.find(id);
    if (it == m_connections.end()) return;
    connection = it->second.get();
  }
  flush(*connection);
  update_interest(*connection);
}

tl::expected<int, Error> Pool::poll(int timeout_ms) {
  if (m_epoll_fd < 0) return tl::unexpected(Error{Error::Kind::Io, "no epoll instance"});
  if (m_deadline_head < m_deadlines.size()) {
    const std::uint64_t now = now_ms();
    const std::uint64_t due = m_deadlines[m_deadline_head].first;
    const int until = due <= now ? 0 : static_cast<int>(std::min<std::uint64_t>(due - now, 1'000'000));
    if (timeout_ms < 0 || until < timeout_ms) timeout_ms = until;
  }
  std::array<epoll_event, 512> events;
  const int n = ::epoll_wait(m_epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0 && errno != EINTR) return tl::unexpected(errno_error("epoll_wait", errno));
  for (int i = 0; i < n; ++i) {
    const auto& event = events[static_cast<std::size_t>(i)];
    handle_event(event.data.u64, event.events);
  }
  if (m_deadline_head < m_deadlines.size()) {
    const std::uint64_t now = now_ms();
    while (m_deadline_head < m_deadlines.size() && m_deadlines[m_deadline_head].first <= now) {
      const ConnectionId id = m_deadlines[m_deadline_head++].second;
      const auto it = m_connections.find(id);
      if (it != m_connections.end() && !it->second->session.ready()) {
        fail(id, Error{Error::Kind::Io, it->second->connecting ? "TCP connect timed out" : "handshake timed out"});
      }
    }
    if (m_deadline_head > 4096 && m_deadline_head * 2 > m_deadlines.size()) {
      m_deadlines.erase(m_deadlines.begin(), m_deadlines.begin() + static_cast<std::ptrdiff_t>(m_deadline_head));
      m_deadline_head = 0;
    }
  }
  return std::max(n, 0);
}

tl::expected<void, Error> Pool::send(ConnectionId id, std::span<const std::span<const std::uint8_t>> frames) {
  const auto it = m_connections.find(id);
  if (it == m_connections.end()) return tl::unexpected(Error{Error::Kind::Closed, "no such connection"});
  Connection& connection = *it->second;
  if (connection.session.pending_output().size() > m_options.max_queued_bytes) {
    return tl::unexpected(Error{Error::Kind::WouldBlock, "too many bytes queued"});
  }
  if (auto sent = connection.session.send(frames); !sent) return sent;
  flush(connection);
  update_interest(connection);
  return {};
}

tl::expected<void, Error> Pool::send(ConnectionId id, std::span<const std::uint8_t> frame) {
  const std::span<const std::uint8_t> frames[1] = {frame};
  return send(id, std::span<const std::span<const std::uint8_t>>(frames));
}

void Pool::close(ConnectionId id) { m_connections.erase(id); }

void Pool::close_all() { m_connections.clear(); }

bool Pool::ready(ConnectionId id) const {
  const auto it = m_connections.find(id);
  return it != m_connections.end() && it->second->session.ready();
}

}  // namespace tide::zmtp
