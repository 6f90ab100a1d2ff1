#include "agent/core/link.hpp"

#include <algorithm>
#include <limits>

namespace tide::agent {

std::uint32_t Backoff::ceiling_ms() const {
  std::uint64_t ceiling = m_base_ms;
  for (std::uint32_t i = 0; i < m_attempt && ceiling < m_cap_ms; ++i) ceiling *= 2;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(ceiling, m_cap_ms));
}

std::uint32_t Backoff::next_delay_ms(double unit_random) {
  const double r = std::clamp(unit_random, 0.0, 1.0);
  const std::uint32_t ceiling = ceiling_ms();
  if (m_attempt < 32) ++m_attempt;
  return static_cast<std::uint32_t>(r * static_cast<double>(ceiling));
}

std::uint64_t jittered_interval_ms(std::uint32_t interval_ms, double unit_random) {
  const double r = std::clamp(unit_random, 0.0, 1.0);
  return static_cast<std::uint64_t>(static_cast<double>(interval_ms) * (0.9 + 0.2 * r));
}

LinkSession::LinkSession(LinkTiming timing)
    : m_timing(timing), m_backoff(timing.backoff_base_ms, timing.backoff_cap_ms) {}

std::uint32_t LinkSession::lost_after_ms() const {
  return m_welcome.heartbeat_interval_ms * m_welcome.liveness;
}

LinkAction LinkSession::poll(std::uint64_t now_ms, double unit_random) {
  switch (m_state) {
    case LinkState::Closed:
      return now_ms >= m_reopen_at_ms ? LinkAction::OpenSocket : LinkAction::None;
    case LinkState::Connecting:
      if (m_hello_out && now_ms >= m_hello_sent_ms + m_timing.welcome_timeout_ms) {
        drop(now_ms, unit_random);
        return LinkAction::CloseSocket;
      }
      if (m_hello_out) return LinkAction::None;
      return now_ms >= m_next_hello_ms ? LinkAction::SendHello : LinkAction::None;
    case LinkState::Established:
      if (now_ms >= m_last_heard_ms + lost_after_ms()) {
        drop(now_ms, unit_random);
        return LinkAction::CloseSocket;
      }
      if (m_report_requested || now_ms >= m_next_report_ms) return LinkAction::SendReport;
      return LinkAction::None;
  }
  return LinkAction::None;
}

std::uint64_t LinkSession::next_wakeup_ms() const {
  switch (m_state) {
    case LinkState::Closed:
      return m_reopen_at_ms;
    case LinkState::Connecting:
      return m_hello_out ? m_hello_sent_ms + m_timing.welcome_timeout_ms : m_next_hello_ms;
    case LinkState::Established:
      if (m_report_requested) return 0;
      return std::min(m_next_report_ms, m_last_heard_ms + lost_after_ms());
  }
  return std::numeric_limits<std::uint64_t>::max();
}

void LinkSession::socket_opened(std::uint64_t now_ms) {
  m_state = LinkState::Connecting;
  m_next_hello_ms = now_ms;
  m_hello_out = false;
}

void LinkSession::hello_sent(std::uint64_t now_ms, bool ok, double unit_random) {
  if (ok) {
    m_hello_out = true;
    m_hello_sent_ms = now_ms;
  } else {
    // Not connected yet (or the handshake is still running): try again soon,
    // backing off so a long outage costs little.
    m_next_hello_ms = now_ms + std::max<std::uint32_t>(1, m_backoff.next_delay_ms(unit_random));
  }
}

void LinkSession::report_sent(std::uint64_t now_ms, double unit_random) {
  m_report_requested = false;
  m_next_report_ms = now_ms + jittered_interval_ms(m_welcome.report_interval_ms, unit_random);
}

void LinkSession::welcome(const protocol::Welcome& welcome, std::uint64_t now_ms) {
  m_welcome = welcome;
  m_state = LinkState::Established;
  m_seq = 0;
  m_hello_out = false;
  m_last_heard_ms = now_ms;
  m_report_requested = true;  // the coordinator learns the state at once
  m_next_report_ms = now_ms;
  m_backoff.reset();
  ++m_sessions;
}

void LinkSession::heard(std::uint64_t now_ms) { m_last_heard_ms = std::max(m_last_heard_ms, now_ms); }

void LinkSession::peer_connected(std::uint64_t now_ms) {
  // A (re)connected transport: say HELLO at once rather than after back-off.
  if (m_state == LinkState::Connecting && !m_hello_out) m_next_hello_ms = now_ms;
}

void LinkSession::session_unknown(std::uint64_t now_ms) {
  if (m_state == LinkState::Closed) return;
  m_state = LinkState::Connecting;
  m_hello_out = false;
  m_next_hello_ms = now_ms;
}

void LinkSession::drop(std::uint64_t now_ms, double unit_random) {
  m_state = LinkState::Closed;
  m_hello_out = false;
  m_report_requested = false;
  m_reopen_at_ms = now_ms + m_backoff.next_delay_ms(unit_random);
}

bool CommandLog::first_time(std::uint64_t command_id) {
  if (std::find(m_ids.begin(), m_ids.end(), command_id) != m_ids.end()) return false;
  m_ids.push_back(command_id);
  if (m_ids.size() > m_capacity) m_ids.pop_front();
  return true;
}

}  // namespace tide::agent
