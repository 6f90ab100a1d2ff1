// Runs HAProxy as a child process (master-worker mode, `haproxy -W -db -f
// <cfg>`): starts it, restarts it with exponential back-off when it dies,
// reloads its configuration (SIGUSR2 to the master: a new worker takes over
// the listening sockets), and stops it. After every start and reload the
// runtime state is fresh (all slots in maint), so the owner reconciles
// membership from on_started.
//
// It can also adopt an HAProxy that an earlier coordinator started and left
// serving (a crash, or a stop that kept the load balancer up): adopt() watches
// that process through a pidfd, and from then on it is supervised like a
// child — signalled on reload and stop, replaced when it dies.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace tide::haproxy {

class Supervisor {
 public:
  struct Options {
    std::string haproxy_binary = "haproxy";
    std::string config_path;
    std::vector<std::string> extra_args;
    std::uint64_t restart_backoff_initial_ms = 100;
    std::uint64_t restart_backoff_max_ms = 5000;
    std::uint64_t stable_after_ms = 10000;  // a run this long resets the back-off
    std::uint64_t stop_timeout_ms = 5000;   // SIGTERM, then SIGKILL after this
    // HAProxy's stdout and stderr are read through a pipe and each line is
    // logged as HAProxy's ("haproxy[pid]: ...", at the level it gave); false
    // discards them.
    bool inherit_output = true;
  };
  struct Events {
    std::function<void(int pid)> on_started;      // spawned (the socket appears shortly after)
    std::function<void(int pid)> on_reloaded;     // SIGUSR2 sent; a new worker owns the socket soon
    std::function<void(std::int64_t exit_status, int term_signal)> on_exited;
    std::function<void(const std::string& error)> on_spawn_error;
  };

  Supervisor(uv_loop_t* loop, Options options, Events events);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Checks the configuration (`haproxy -c`, blocking, short) and spawns HAProxy.
  [[nodiscard]] tl::expected<void, std::string> start();
  // Supervises an HAProxy master that is already running (not our child):
  // no restart, so the traffic it serves is not interrupted. Fails when the
  // process is gone or cannot be watched.
  [[nodiscard]] tl::expected<void, std::string> adopt(int pid);
  // Re-reads the configuration file. Fails if it does not pass `haproxy -c`.
  [[nodiscard]] tl::expected<void, std::string> reload();
  // Stops HAProxy (no restart); `done` runs once the process is gone.
  void stop(std::function<void()> done);
  // Stops supervising and leaves HAProxy serving, for the next coordinator to adopt.
  void release();

  [[nodiscard]] int pid() const { return m_pid; }
  [[nodiscard]] bool adopted() const { return m_watch != nullptr; }
  [[nodiscard]] bool running() const { return m_pid > 0; }
  [[nodiscard]] std::uint64_t restarts() const { return m_restarts; }

 private:
  void spawn();
  void on_exit(std::int64_t status, int signal);
  void unwatch();
  void start_output(int fd);
  void close_output();
  [[nodiscard]] int signal_haproxy(int signal);
  void schedule_restart();

  uv_loop_t* m_loop;
  Options m_options;
  Events m_events;
  uv_process_t* m_process = nullptr;  // our child, or
  uv_poll_t* m_watch = nullptr;       // a pidfd on an adopted HAProxy (not our child)
  uv_timer_t* m_timer = nullptr;  // restart back-off and stop deadline
  struct OutputRelay;
  OutputRelay* m_output = nullptr;  // the running child's stdout/stderr, until EOF
  int m_pid = 0;
  bool m_stopping = false;
  bool m_wanted = false;
  std::uint64_t m_backoff_ms = 0;
  std::uint64_t m_started_ms = 0;
  std::uint64_t m_restarts = 0;
  std::function<void()> m_stop_done;
};

// One line HAProxy wrote on stdout or stderr, as the coordinator logs it.
// HAProxy 2.6 starts its own messages with "[NOTICE]   (pid) : ",
// "[WARNING]  (pid) : " or "[ALERT]    (pid) : "; other lines (a worker's
// early output) have no level.
struct OutputLine {
  enum class Level : std::uint8_t { Info, Warning, Error };
  Level level = Level::Info;
  int pid = 0;          // the pid in the line; 0 when it names none
  std::string message;  // the text after the level and pid
};
[[nodiscard]] OutputLine parse_output_line(std::string_view line);

// Runs `haproxy -c -f <config>` and returns its diagnostics on failure.
[[nodiscard]] tl::expected<void, std::string> check_config(const std::string& haproxy_binary,
                                                           const std::string& config_path);

}  // namespace tide::haproxy
