// The agent's side of the session rules of protocol/SPEC.md, as a pure state
// machine: when to open a socket, say HELLO, send a REPORT, and when the
// coordinator counts as lost. The io/ shell owns the socket and the clock;
// it calls poll() with `now` and a uniform random number, does the one
// action returned, reports back, and sleeps until next_wakeup_ms().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "protocol/messages.hpp"

namespace tide::agent {

// Capped exponential back-off with full jitter: the n-th delay is uniform in
// [0, min(cap, base * 2^n)), so a fleet that loses its coordinator at once
// does not reconnect in lock step.
class Backoff {
 public:
  Backoff(std::uint32_t base_ms, std::uint32_t cap_ms) : m_base_ms(base_ms), m_cap_ms(cap_ms) {}
  // unit_random in [0, 1).
  [[nodiscard]] std::uint32_t next_delay_ms(double unit_random);
  [[nodiscard]] std::uint32_t ceiling_ms() const;  // the bound of the next delay
  void reset() { m_attempt = 0; }

 private:
  std::uint32_t m_base_ms;
  std::uint32_t m_cap_ms;
  std::uint32_t m_attempt = 0;
};

// interval * (0.9 + 0.2 * unit_random): +-10 % jitter (SPEC.md, "Session").
[[nodiscard]] std::uint64_t jittered_interval_ms(std::uint32_t interval_ms, double unit_random);

struct LinkTiming {
  std::uint32_t backoff_base_ms = 100;
  std::uint32_t backoff_cap_ms = 5000;
  // How long to wait for WELCOME after a HELLO went out before the socket is
  // thrown away and a fresh one opened.
  std::uint32_t welcome_timeout_ms = 3000;
};

enum class LinkState : std::uint8_t { Closed, Connecting, Established };
enum class LinkAction : std::uint8_t { None, OpenSocket, SendHello, SendReport, CloseSocket };

class LinkSession {
 public:
  explicit LinkSession(LinkTiming timing);

  // The one action due at now_ms (None when nothing is). Call again until
  // it returns None; each call may change the state.
  [[nodiscard]] LinkAction poll(std::uint64_t now_ms, double unit_random);
  // When poll() next has something to do (absolute ms).
  [[nodiscard]] std::uint64_t next_wakeup_ms() const;

  void socket_opened(std::uint64_t now_ms);
  // ok = false when the socket had no connected peer (ZMQ_IMMEDIATE).
  void hello_sent(std::uint64_t now_ms, bool ok, double unit_random);
  void report_sent(std::uint64_t now_ms, double unit_random);
  void welcome(const protocol::Welcome& welcome, std::uint64_t now_ms);
  // Any valid message from the coordinator proves it alive.
  void heard(std::uint64_t now_ms);
  // The transport reports a completed connection (handshake done).
  void peer_connected(std::uint64_t now_ms);
  // ERROR 410: the coordinator forgot us (it restarted); HELLO again at once.
  void session_unknown(std::uint64_t now_ms);
  // ERROR 401/404/505 or GOODBYE: drop the socket and retry after back-off.
  void drop(std::uint64_t now_ms, double unit_random);
  // Readiness or health changed: report at once if a session is up.
  void request_report() { m_report_requested = true; }

  [[nodiscard]] std::uint64_t next_seq() { return ++m_seq; }
  [[nodiscard]] LinkState state() const { return m_state; }
  [[nodiscard]] const protocol::Welcome& session() const { return m_welcome; }
  [[nodiscard]] std::uint32_t lost_after_ms() const;
  [[nodiscard]] std::uint64_t sessions() const { return m_sessions; }

 private:
  LinkTiming m_timing;
  Backoff m_backoff;
  LinkState m_state = LinkState::Closed;
  std::uint64_t m_reopen_at_ms = 0;
  std::uint64_t m_next_hello_ms = 0;
  bool m_hello_out = false;
  std::uint64_t m_hello_sent_ms = 0;
  std::uint64_t m_next_report_ms = 0;
  std::uint64_t m_last_heard_ms = 0;
  bool m_report_requested = false;
  std::uint64_t m_seq = 0;
  std::uint64_t m_sessions = 0;
  protocol::Welcome m_welcome;
};

// Commands are idempotent by command_id (the coordinator resends an
// un-ACKed one): remembers the last ids seen.
class CommandLog {
 public:
  explicit CommandLog(std::size_t capacity = 256) : m_capacity(capacity) {}
  // True when id is new (and remembers it); false for a resend.
  bool first_time(std::uint64_t command_id);

 private:
  std::size_t m_capacity;
  std::deque<std::uint64_t> m_ids;
};

}  // namespace tide::agent
