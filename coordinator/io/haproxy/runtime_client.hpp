// Asynchronous client for HAProxy's runtime API (the stats socket), on libuv.
//
// One persistent connection in `prompt` mode: commands are pipelined, one per
// line, and each answer ends with HAProxy's "\n> " prompt, so a command costs
// one write and no connection set-up (~0.1–1 ms on loopback instead of a
// connect per command). Commands are queued while (re)connecting, answered in
// order, and time out. A dropped connection is re-established on the next
// command; commands that were written but not answered are sent once more,
// which is safe because every command tide sends is idempotent.
//
// Never blocks the loop; callbacks run on the loop, never inside send().
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace tide::haproxy {

struct ApiError {
  enum class Kind : std::uint8_t {
    Connect,       // the socket could not be reached (HAProxy down, wrong path)
    Timeout,       // no answer within command_timeout_ms
    Disconnected,  // the connection dropped before the answer, twice
    Rejected,      // HAProxy answered with an error text (detail holds it)
    BadAnswer,     // the answer could not be parsed
    BadCommand,    // the command was refused before sending (newline, ';', empty)
    Closed,        // the client was closed
  };
  Kind kind = Kind::Connect;
  std::string detail;
};

[[nodiscard]] std::string_view to_string(ApiError::Kind kind);

class RuntimeClient {
 public:
  struct Options {
    // A unix socket path, or "tcp:<ipv4>:<port>".
    std::string endpoint;
    std::uint64_t command_timeout_ms = 2000;
    std::size_t max_in_flight = 64;  // commands written and not yet answered
  };
  using Answer = tl::expected<std::string, ApiError>;
  using Callback = std::function<void(Answer)>;

  RuntimeClient(uv_loop_t* loop, Options options);
  ~RuntimeClient();
  RuntimeClient(const RuntimeClient&) = delete;
  RuntimeClient& operator=(const RuntimeClient&) = delete;

  // Queues one command. `cb` gets HAProxy's answer text (possibly empty; the
  // prompt removed) or an error. The answer text is not interpreted here.
  void send(std::string command, Callback cb);

  // Queues one command that carries a payload (`set ssl cert <file> <<`):
  // `command` ends with " <<" and `payload` follows it line by line (blank
  // lines and carriage returns are dropped: an empty line ends the payload).
  // HAProxy's "+ " continuation prompts are removed from the answer.
  void send_with_payload(std::string command, const std::string& payload, Callback cb);

  // Drops the connection now (e.g. HAProxy was reloaded and a new process owns
  // the socket). Commands in flight are resent on the new connection.
  void reset();

  // Fails every queued command with Closed and releases the libuv handles.
  // The client must not be used afterwards; destroy it any time after.
  void close();

  [[nodiscard]] bool connected() const { return m_state == State::Open; }
  [[nodiscard]] std::size_t pending() const { return m_queue.size() + m_in_flight.size(); }
  [[nodiscard]] std::uint64_t connects() const { return m_connects; }
  [[nodiscard]] const std::string& endpoint() const { return m_options.endpoint; }

 private:
  enum class State : std::uint8_t { Idle, Connecting, Handshake, Open, Closed };
  struct Pending {
    std::string command;
    Callback cb;
    std::string payload;  // lines, each ending with '\n'; sent after the command
    std::uint64_t sent_ms = 0;
    int attempts = 0;
  };
  struct Conn;
  struct Write;

  void connect();
  void drop_connection(ApiError error, bool retry_in_flight);
  void flush();
  void on_data(std::string_view data);
  void on_tick();
  void fail_all(const ApiError& error);
  void defer(Callback cb, Answer answer);
  void run_deferred();

  static void on_connect(uv_connect_t* req, int status);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);

  uv_loop_t* m_loop;
  Options m_options;
  State m_state = State::Idle;
  Conn* m_conn = nullptr;
  uv_timer_t* m_tick = nullptr;   // timeouts
  uv_timer_t* m_defer = nullptr;  // runs callbacks that must not run inside send()
  std::deque<Pending> m_queue;
  std::deque<Pending> m_in_flight;
  std::deque<std::pair<Callback, Answer>> m_deferred;
  std::string m_in;
  std::uint64_t m_connect_started_ms = 0;
  std::uint64_t m_connects = 0;
};

}  // namespace tide::haproxy
