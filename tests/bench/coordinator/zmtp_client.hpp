// zmtp_client: a small ZMTP 3.0 DEALER client that drives thousands of TCP
// connections from one thread, for simulated agents in benchmarks.
//
// Written from the ZeroMQ RFCs (23/ZMTP 3.0, 37/ZMTP 3.1 for PING/PONG,
// 24/ZMTP-PLAIN's NULL READY metadata, 25/ZMTP-CURVE, 26/CurveZMQ, 32/Z85).
// A libzmq DEALER costs a socket, a mailbox (eventfd) and I/O-thread work per
// agent; bench_ingest's swarm of 10,000 agents took more CPU than the gateway
// it measured. Here an agent is one nonblocking TCP socket and a few hundred
// bytes of state, all served by one epoll loop.
//
// Two layers:
// - Session: the protocol of one connection, bytes in and bytes out, no I/O
//   (greeting, NULL or CURVE handshake, frame encode/decode, CURVE MESSAGE
//   boxes, PING answered with PONG). Unit-testable on its own.
// - Pool: nonblocking sockets on one epoll instance, each with a Session;
//   poll() reads, writes and calls back. Not thread-safe: one thread owns it.
//
// It speaks to a libzmq ROUTER what a libzmq DEALER (ZMQ_IMMEDIATE) would: the
// same greeting, READY metadata (Socket-Type DEALER, Identity = routing id),
// one ZMTP frame per message part, CURVE MESSAGE boxes with libzmq's flags.
// What it leaves out: reconnecting by itself (the caller does it, see
// Pool::connect), high-water marks other than a byte cap on queued output,
// ZMTP 1.0/2.0 peers, the PLAIN mechanism, IPv6 and host names.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tl/expected.hpp>

namespace tide::zmtp {

struct Error {
  enum class Kind : std::uint8_t {
    InvalidArgument,  // bad endpoint, key or option
    NotReady,         // send() before the handshake finished (like ZMQ_IMMEDIATE)
    WouldBlock,       // too many bytes already queued for this connection
    TooLarge,         // a frame above the configured limit (either direction)
    Protocol,         // the peer sent something that is not ZMTP (or not what we expect)
    Handshake,        // the handshake failed: mechanism mismatch, wrong server key, ERROR command
    Closed,           // the peer closed the connection, or the connection is unknown
    Io,               // socket(), connect(), read(), write() failed; connect timed out
  };
  Kind kind = Kind::Io;
  std::string detail;
};

[[nodiscard]] std::string_view to_string(Error::Kind kind);

using Key = std::array<std::uint8_t, 32>;

// Z85 (rfc 32/Z85) for 32-byte CURVE keys: 40 characters.
[[nodiscard]] std::optional<Key> z85_decode_key(std::string_view text);
[[nodiscard]] std::string z85_encode_key(const Key& key);

struct KeyPair {
  Key public_key{};
  Key secret_key{};
};
// A fresh Curve25519 key pair (libsodium's crypto_box_keypair).
[[nodiscard]] KeyPair generate_keypair();

struct CurveOptions {
  Key server_public{};  // the server's long-term public key (S)
  KeyPair client;       // this client's long-term key pair (C, c)
};

struct SessionOptions {
  std::string routing_id;               // READY's Identity property; <= 255 bytes
  std::optional<CurveOptions> curve;    // none: the NULL mechanism
  std::size_t max_frame_bytes = 1U << 20U;  // inbound frames above this are a TooLarge error
};

// One frame is a byte string; a message is one or more frames.
using Frame = std::vector<std::uint8_t>;
using Message = std::vector<Frame>;

// The protocol state of one client connection. No I/O: feed() it what was
// read, write out pending_output() and consume_output() what was written.
class Session {
 public:
  enum class State : std::uint8_t {
    ExpectGreeting,    // our greeting is queued; waiting for the server's 64 bytes
    ExpectNullReady,   // NULL: our READY is queued; waiting for the server's READY
    ExpectWelcome,     // CURVE: HELLO queued; waiting for WELCOME
    ExpectCurveReady,  // CURVE: INITIATE queued; waiting for READY
    Ready,             // messages flow both ways
    Failed,            // a protocol or handshake error; the connection must be closed
  };

  // Queues the greeting. An invalid option (routing id > 255 bytes) fails the
  // session at once (state() == Failed, error() says why).
  explicit Session(SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes read from the peer. Complete messages are appended to `messages`.
  // An error leaves the session Failed; later calls return the same error.
  [[nodiscard]] tl::expected<void, Error> feed(std::span<const std::uint8_t> bytes, std::vector<Message>& messages);

  // Queues one message (>= 1 frames). NotReady before the handshake is done.
  [[nodiscard]] tl::expected<void, Error> send(std::span<const std::span<const std::uint8_t>> frames);
  [[nodiscard]] tl::expected<void, Error> send(std::span<const std::uint8_t> frame);

  // Bytes waiting to be written, oldest first.
  [[nodiscard]] std::span<const std::uint8_t> pending_output() const;
  void consume_output(std::size_t bytes);

  [[nodiscard]] State state() const { return m_state; }
  [[nodiscard]] bool ready() const { return m_state == State::Ready; }
  [[nodiscard]] const Error& error() const { return m_error; }
  // The server's READY metadata (e.g. "Socket-Type" -> "ROUTER").
  [[nodiscard]] const std::unordered_map<std::string, std::string>& peer_metadata() const { return m_peer_metadata; }

 private:
  struct Curve;
  tl::expected<void, Error> fail(Error::Kind kind, std::string detail);
  tl::expected<void, Error> on_greeting(std::span<const std::uint8_t> greeting);
  tl::expected<void, Error> on_frame(std::uint8_t flags, std::span<const std::uint8_t> body,
                                     std::vector<Message>& messages);
  tl::expected<void, Error> on_command(std::span<const std::uint8_t> body);
  tl::expected<void, Error> on_data(bool more, std::span<const std::uint8_t> data, std::vector<Message>& messages);
  tl::expected<void, Error> on_curve_message(std::span<const std::uint8_t> body, std::vector<Message>& messages);
  tl::expected<void, Error> on_welcome(std::span<const std::uint8_t> body);
  tl::expected<void, Error> on_curve_ready(std::span<const std::uint8_t> body);
  tl::expected<void, Error> parse_metadata(std::span<const std::uint8_t> properties);
  void write_frame(std::uint8_t flags, std::span<const std::uint8_t> body);
  void write_command(std::string_view name, std::span<const std::uint8_t> data);
  void write_ready_null();
  bool write_hello();
  bool write_initiate(std::span<const std::uint8_t> cookie);
  void write_curve_message(std::uint8_t inner_flags, std::span<const std::uint8_t> data);
  std::vector<std::uint8_t> own_metadata() const;

  SessionOptions m_options;
  State m_state = State::ExpectGreeting;
  Error m_error;
  std::vector<std::uint8_t> m_in;   // unparsed input
  std::size_t m_in_offset = 0;      // parsed bytes at the front of m_in
  std::vector<std::uint8_t> m_out;  // output not yet written
  std::size_t m_out_offset = 0;     // written bytes at the front of m_out
  Message m_partial;                // frames of a message whose last frame has not arrived
  std::unordered_map<std::string, std::string> m_peer_metadata;
  std::unique_ptr<Curve> m_curve;
};

using ConnectionId = std::uint64_t;

struct PoolOptions {
  // TCP connect plus ZMTP handshake must finish within this, else the
  // connection fails with Io "handshake timed out" (0: no limit).
  std::uint32_t handshake_timeout_ms = 0;
  // send() fails with WouldBlock while more than this is queued for a connection.
  std::size_t max_queued_bytes = 256U * 1024U;
};

struct PoolCallbacks {
  std::function<void(ConnectionId id, std::uint64_t tag)> on_ready;  // handshake done
  std::function<void(ConnectionId id, std::uint64_t tag, const Message& message)> on_message;
  // The connection is gone (already removed from the pool); error says why.
  std::function<void(ConnectionId id, std::uint64_t tag, const Error& error)> on_closed;
};

// Many client connections served by one epoll instance on the caller's thread.
// Callbacks run inside poll() and may call send(), close() and connect().
class Pool {
 public:
  explicit Pool(PoolOptions options = {}, PoolCallbacks callbacks = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  void set_callbacks(PoolCallbacks callbacks) { m_callbacks = std::move(callbacks); }

  // Starts a nonblocking connect to "tcp://A.B.C.D:port" (or tcp://localhost:port).
  // `tag` is handed back in callbacks. Fails only on a bad endpoint or option,
  // or when no socket can be made; connection failures arrive as on_closed.
  [[nodiscard]] tl::expected<ConnectionId, Error> connect(std::string_view endpoint, SessionOptions options,
                                                          std::uint64_t tag = 0);
  // Queues a message and writes what the socket takes now. NotReady before
  // on_ready, Closed for an unknown id, WouldBlock above max_queued_bytes.
  [[nodiscard]] tl::expected<void, Error> send(ConnectionId id, std::span<const std::span<const std::uint8_t>> frames);
  [[nodiscard]] tl::expected<void, Error> send(ConnectionId id, std::span<const std::uint8_t> frame);
  // Closes at once (anything queued is dropped); no on_closed for it.
  void close(ConnectionId id);
  void close_all();

  // Waits up to timeout_ms (0: do not wait) for socket events and handles
  // them, and fails connections past the handshake time-out. Returns the
  // number of socket events handled, or an Io error if epoll itself failed.
  [[nodiscard]] tl::expected<int, Error> poll(int timeout_ms);

  [[nodiscard]] bool ready(ConnectionId id) const;
  [[nodiscard]] std::size_t size() const { return m_connections.size(); }
  // The epoll descriptor: readable when poll() has work (to nest in another loop).
  [[nodiscard]] int fd() const { return m_epoll_fd; }

 private:
  struct Connection;
  void flush(Connection& connection);
  void fail(ConnectionId id, Error error);
  void handle_event(ConnectionId id, std::uint32_t events);
  void update_interest(Connection& connection);

  PoolOptions m_options;
  PoolCallbacks m_callbacks;
  int m_epoll_fd = -1;
  ConnectionId m_next_id = 1;
  std::unordered_map<ConnectionId, std::unique_ptr<Connection>> m_connections;
  // Handshake deadlines in connect order (the time-out is the same for all,
  // so this is also deadline order).
  std::vector<std::pair<std::uint64_t, ConnectionId>> m_deadlines;
  std::size_t m_deadline_head = 0;
  std::vector<Message> m_scratch_messages;
};

}  // namespace tide::zmtp
