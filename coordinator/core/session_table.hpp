// SessionTable: the coordinator's side of the agent sessions (protocol/SPEC.md
// section 7), without I/O — the mirror of the agent's LinkSession.
//
// It keeps one session per connected agent (who it speaks for, its key, the
// last REPORT sequence, when it last heard and sent), decides when a session
// is lost and when it is owed a HEARTBEAT, and tracks commands until they are
// acknowledged (resends, expiry). The AgentGateway (io/) moves the bytes and
// asks this table what to do; time is passed in (uv_now), so the liveness
// rules are unit-tested on a fake clock.
//
// `Peer` is the transport's connection handle (a ZeroMQ routing id in the
// shell): anything hashable and comparable.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tide::coordinator {

struct SessionConfig {
  std::uint32_t report_interval_ms = 1000;
  std::uint32_t heartbeat_interval_ms = 1000;
  std::uint32_t liveness = 3;             // silent intervals before a session is lost
  std::uint32_t command_resend_ms = 1000;
  std::uint32_t command_attempts = 5;
  // How often poll() is meant to run. A poll that comes much later means the
  // coordinator itself was stalled (a blocked loop, a suspended process):
  // agents whose messages are still queued must not be declared lost for the
  // coordinator's own silence, so silence is counted from the stall's end.
  std::uint32_t poll_interval_ms = 100;
  // The first command id this table hands out; later ones count up from it.
  // Agents ignore (and only re-ACK) an id they have already applied, so ids
  // must not start again at the same value after a coordinator restart: the
  // shell passes a value that grows with time (SPEC 8).
  std::uint64_t first_command_id = 1;
};

template <class Peer, class Hash = std::hash<Peer>>
class SessionTable {
 public:
  struct Session {
    std::string instance_id;
    std::string agent_key;
    std::string session_id;
    std::uint64_t last_seq = 0;
    std::uint64_t last_rx_ms = 0;
    std::uint64_t last_tx_ms = 0;
  };
  // A session that ended; `notify`: the instance lost its agent (the handler
  // is told), as opposed to a reconnect that replaced the session.
  struct Ended {
    Peer peer;
    std::string instance_id;
    std::string reason;
  };
  struct Expired {
    std::string instance_id;
    std::uint64_t command_id = 0;
  };
  // What poll() wants done now.
  struct Due {
    std::vector<Ended> lost;                              // tell the handler, say nothing to the peer
    std::vector<Peer> heartbeat;                          // send HEARTBEAT (then sent())
    std::vector<std::pair<Peer, std::uint64_t>> resend;   // send this command's frame again
    std::vector<Expired> expired;                         // never acknowledged: forgotten
  };

  explicit SessionTable(SessionConfig config)
      : m_config(config), m_next_command_id(std::max<std::uint64_t>(1, config.first_command_id)) {}

  // A HELLO was accepted. Returns the session the peer spoke for before, if
  // it spoke for another instance (that instance lost its agent). A session
  // of the same instance on another peer (a reconnect) is replaced quietly.
  std::optional<Ended> open(const Peer& peer, std::string instance_id, std::string agent_key, std::string session_id,
                            std::uint64_t now_ms) {
    std::optional<Ended> ended;
    if (auto current = m_sessions.find(peer);
        current != m_sessions.end() && current->second.instance_id != instance_id) {
      ended = close(peer, "the connection now speaks for instance " + instance_id);
    }
    if (auto old = m_by_instance.find(instance_id); old != m_by_instance.end() && !(old->second == peer)) {
      m_sessions.erase(old->second);
    }
    Session session;
    session.instance_id = instance_id;
    session.agent_key = std::move(agent_key);
    session.session_id = std::move(session_id);
    session.last_rx_ms = now_ms;
    m_sessions[peer] = std::move(session);
    m_by_instance[std::move(instance_id)] = peer;
    // Commands that waited for this agent go out at the next poll.
    const std::string& id = m_sessions[peer].instance_id;
    for (auto& [command_id, pending] : m_pending) {
      if (pending.instance_id == id) pending.next_send_ms = now_ms;
    }
    return ended;
  }

  // Ends the peer's session (GOODBYE, or a HELLO for another instance).
  std::optional<Ended> close(const Peer& peer, std::string reason) {
    const auto it = m_sessions.find(peer);
    if (it == m_sessions.end()) return std::nullopt;
    Ended ended{peer, it->second.instance_id, std::move(reason)};
    if (auto by = m_by_instance.find(ended.instance_id); by != m_by_instance.end() && by->second == peer) {
      m_by_instance.erase(by);
    }
    m_sessions.erase(it);
    return ended;
  }

  [[nodiscard]] Session* find(const Peer& peer) {
    auto it = m_sessions.find(peer);
    return it == m_sessions.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const Peer* peer_of(const std::string& instance_id) const {
    auto it = m_by_instance.find(instance_id);
    return it == m_by_instance.end() ? nullptr : &it->second;
  }

  // Any message from the session's agent: it is alive.
  static void heard(Session& session, std::uint64_t now_ms) { session.last_rx_ms = now_ms; }

  // A REPORT's sequence number: true when it is newer than the last one (a
  // stale or replayed REPORT is dropped).
  static bool fresh_report(Session& session, std::uint64_t seq) {
    if (seq <= session.last_seq) return false;
    session.last_seq = seq;
    return true;
  }

  void sent(const Peer& peer, std::uint64_t now_ms) {
    if (auto it = m_sessions.find(peer); it != m_sessions.end()) it->second.last_tx_ms = now_ms;
  }

  // A HEARTBEAT rides on the answer to a REPORT when nothing went to the
  // session for half an interval: the sends follow the agents' phases
  // instead of piling up in one poll (SPEC 7.2).
  [[nodiscard]] bool heartbeat_with_report(const Peer& peer, std::uint64_t now_ms) const {
    auto it = m_sessions.find(peer);
    return it != m_sessions.end() && now_ms - it->second.last_tx_ms >= m_config.heartbeat_interval_ms / 2;
  }

  // A new command for the instance: returns its id, and the peer to send it
  // to now (nullopt: not connected; it goes out when the agent says HELLO).
  std::pair<std::uint64_t, std::optional<Peer>> add_command(const std::string& instance_id, std::uint64_t now_ms) {
    const std::uint64_t id = m_next_command_id++;
    Pending pending;
    pending.instance_id = instance_id;
    pending.next_send_ms = now_ms;
    std::optional<Peer> peer;
    if (const Peer* p = peer_of(instance_id)) {
      peer = *p;
      pending.attempts = 1;
      pending.next_send_ms = now_ms + m_config.command_resend_ms;
    }
    m_pending.emplace(id, std::move(pending));
    return {id, peer};
  }
  // The first send of a command failed: retry it at the next poll.
  void send_failed(std::uint64_t command_id, std::uint64_t now_ms) {
    if (auto it = m_pending.find(command_id); it != m_pending.end()) {
      it->second.attempts = 0;
      it->second.next_send_ms = now_ms;
    }
  }
  // ACK: true when the command was pending.
  bool acknowledged(std::uint64_t command_id) { return m_pending.erase(command_id) != 0; }

  Due poll(std::uint64_t now_ms) {
    Due due;
    if (m_last_poll_ms != 0 && now_ms - m_last_poll_ms > 2ULL * m_config.poll_interval_ms + 500) {
      m_silence_from_ms = now_ms;  // the coordinator was stalled: its agents were not silent
    }
    m_last_poll_ms = now_ms;
    const std::uint64_t interval = std::max(m_config.report_interval_ms, m_config.heartbeat_interval_ms);
    const std::uint64_t lost_after = interval * m_config.liveness;
    // A quarter interval of slack: a reporting session is beaten by its next
    // REPORT, not by a poll racing it; one that does not report is beaten at
    // most 1.35 intervals apart (agents allow `liveness` intervals).
    const std::uint64_t beat_after = m_config.heartbeat_interval_ms + m_config.heartbeat_interval_ms / 4;
    std::vector<Peer> lost;
    for (auto& [peer, session] : m_sessions) {
      const std::uint64_t heard = std::max(session.last_rx_ms, m_silence_from_ms);
      if (now_ms > heard && now_ms - heard > lost_after) {
        lost.push_back(peer);
      } else if (now_ms - session.last_tx_ms >= beat_after) {
        due.heartbeat.push_back(peer);
      }
    }
    for (const Peer& peer : lost) {
      if (auto ended = close(peer, "no message within the liveness window")) due.lost.push_back(std::move(*ended));
    }
    for (auto it = m_pending.begin(); it != m_pending.end();) {
      Pending& pending = it->second;
      if (now_ms < pending.next_send_ms) {
        ++it;
        continue;
      }
      if (pending.attempts >= m_config.command_attempts) {
        due.expired.push_back(Expired{pending.instance_id, it->first});
        it = m_pending.erase(it);
        continue;
      }
      // An attempt counts even when the agent is not connected, so a command
      // for an agent that never comes back expires instead of piling up.
      if (const Peer* peer = peer_of(pending.instance_id)) due.resend.emplace_back(*peer, it->first);
      ++pending.attempts;
      pending.next_send_ms = now_ms + m_config.command_resend_ms;
      ++it;
    }
    return due;
  }

  [[nodiscard]] std::size_t size() const { return m_sessions.size(); }
  [[nodiscard]] std::size_t pending_commands() const { return m_pending.size(); }
  [[nodiscard]] std::uint32_t attempts(std::uint64_t command_id) const {
    auto it = m_pending.find(command_id);
    return it == m_pending.end() ? 0 : it->second.attempts;
  }
  template <class F>
  void for_each(F&& f) {
    for (auto& [peer, session] : m_sessions) f(peer, session);
  }
  void clear() {
    m_sessions.clear();
    m_by_instance.clear();
  }

 private:
  struct Pending {
    std::string instance_id;
    std::uint64_t next_send_ms = 0;
    std::uint32_t attempts = 0;
  };

  SessionConfig m_config;
  std::unordered_map<Peer, Session, Hash> m_sessions;
  std::unordered_map<std::string, Peer> m_by_instance;
  std::unordered_map<std::uint64_t, Pending> m_pending;
  std::uint64_t m_next_command_id = 1;
  std::uint64_t m_last_poll_ms = 0;
  std::uint64_t m_silence_from_ms = 0;
};

}  // namespace tide::coordinator
