#include "coordinator/io/haproxy/supervisor.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

namespace tide::haproxy {
namespace {

std::vector<char*> make_argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// A line longer than this is logged in pieces rather than held.
constexpr std::size_t kMaxOutputLine = 4096;

// `stopping`: HAProxy was told to stop. It then reports its workers' exit as
// an alert and its own as a warning; a stop that was asked for is no alarm,
// so those lines are logged as info.
void log_output_line(int pid, std::string_view line, bool stopping) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return;
  OutputLine parsed = parse_output_line(line);
  if (stopping) parsed.level = OutputLine::Level::Info;
  const int shown = parsed.pid != 0 ? parsed.pid : pid;
  switch (parsed.level) {
    case OutputLine::Level::Info:
      spdlog::info("haproxy[{}]: {}", shown, parsed.message);
      break;
    case OutputLine::Level::Warning:
      spdlog::warn("haproxy[{}]: {}", shown, parsed.message);
      break;
    case OutputLine::Level::Error:
      spdlog::error("haproxy[{}]: {}", shown, parsed.message);
      break;
  }
}

}  // namespace

OutputLine parse_output_line(std::string_view line) {
  OutputLine out;
  struct Tag {
    std::string_view text;
    OutputLine::Level level;
  };
  static constexpr Tag kTags[] = {{"[NOTICE]", OutputLine::Level::Info},
                                  {"[WARNING]", OutputLine::Level::Warning},
                                  {"[ALERT]", OutputLine::Level::Error},
                                  {"[EMERG]", OutputLine::Level::Error}};
  std::string_view rest = line;
  bool tagged = false;
  for (const Tag& tag : kTags) {
    if (rest.substr(0, tag.text.size()) == tag.text) {
      out.level = tag.level;
      rest.remove_prefix(tag.text.size());
      tagged = true;
      break;
    }
  }
  if (!tagged) {
    out.message = std::string(line);
    return out;
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  // "(1234) : message"
  if (!rest.empty() && rest.front() == '(') {
    const auto close = rest.find(')');
    int pid = 0;
    bool digits = close != std::string_view::npos && close > 1;
    for (std::size_t i = 1; digits && i < close; ++i) {
      if (rest[i] < '0' || rest[i] > '9' || pid > 99'999'999) {
        digits = false;
      } else {
        pid = pid * 10 + (rest[i] - '0');
      }
    }
    if (digits) {
      out.pid = pid;
      rest.remove_prefix(close + 1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      if (!rest.empty() && rest.front() == ':') rest.remove_prefix(1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    }
  }
  out.message = std::string(rest);
  return out;
}

// The read end of the pipe a child HAProxy writes its stdout and stderr to.
// It outlives the Supervisor's interest in it (a restart, a stop) until EOF,
// so the last lines of a dying HAProxy are logged too.
struct Supervisor::OutputRelay {
  uv_pipe_t pipe{};
  Supervisor* owner = nullptr;  // nullptr once the Supervisor let go of it
  int pid = 0;
  std::string partial;
  std::array<char, 4096> buffer{};

  void relay(std::string_view bytes) {
    partial.append(bytes);
    std::size_t start = 0;
    for (auto newline = partial.find('\n'); newline != std::string::npos; newline = partial.find('\n', start)) {
      log_output_line(pid, std::string_view(partial).substr(start, newline - start), stopping());
      start = newline + 1;
    }
    partial.erase(0, start);
    if (partial.size() >= kMaxOutputLine) {
      log_output_line(pid, partial, stopping());
      partial.clear();
    }
  }

  // A stop the Supervisor asked for (not the end of an HAProxy that died by
  // itself, whose last lines keep their level).
  [[nodiscard]] bool stopping() const { return owner != nullptr && owner->m_stopping; }

  void close() {
    log_output_line(pid, partial, stopping());
    partial.clear();
    if (owner != nullptr && owner->m_output == this) owner->m_output = nullptr;
    owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe),
             [](uv_handle_t* h) { delete static_cast<OutputRelay*>(h->data); });
  }
};

void Supervisor::start_output(int fd) {
  // The previous child's pipe, if still open, drains on its own until EOF.
  if (m_output != nullptr) m_output->owner = nullptr;
  m_output = nullptr;
  auto* relay = new OutputRelay;
  relay->pid = m_pid;
  relay->pipe.data = relay;
  uv_pipe_init(m_loop, &relay->pipe, 0);
  if (const int opened = uv_pipe_open(&relay->pipe, fd); opened < 0) {
    spdlog::warn("HAProxy: cannot read its output ({}); it is discarded", uv_strerror(opened));
    ::close(fd);
    relay->close();
    return;
  }
  relay->owner = this;
  m_output = relay;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&relay->pipe),
      [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* r = static_cast<OutputRelay*>(h->data);
        buf->base = r->buffer.data();
        buf->len = r->buffer.size();
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* r = static_cast<OutputRelay*>(s->data);
        if (n > 0) r->relay(std::string_view(buf->base, static_cast<std::size_t>(n)));
        if (n < 0) r->close();  // EOF: every HAProxy process holding it is gone
      });
}

void Supervisor::close_output() {
  if (m_output == nullptr) return;
  OutputRelay* relay = m_output;
  m_output = nullptr;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&relay->pipe));
  relay->close();
}

tl::expected<void, std::string> check_config(const std::string& haproxy_binary, const std::string& config_path) {
  // A private loop: the check takes a few milliseconds and must not run any
  // of the main loop's callbacks in the middle of the caller's work.
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct Ctx {
    std::string output;
    std::int64_t status = -1;
    int signal = 0;
  } ctx;
  uv_pipe_t out;
  uv_pipe_init(&loop, &out, 0);
  out.data = &ctx;
  std::vector<std::string> args = {haproxy_binary, "-c", "-q", "-f", config_path};
  auto argv = make_argv(args);
  uv_stdio_container_t stdio[3];
  // HAProxy prints its diagnostics on stderr.
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_IGNORE;
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&out);
  uv_process_options_t opt{};
  opt.file = argv[0];
  opt.args = argv.data();
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = [](uv_process_t* p, std::int64_t status, int sig) {
    auto* c = static_cast<Ctx*>(p->data);
    c->status = status;
    c->signal = sig;
    uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
  };
  uv_process_t proc;
  proc.data = &ctx;
  int rc = uv_spawn(&loop, &proc, &opt);
  if (rc < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&out), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return tl::make_unexpected("cannot run " + haproxy_binary + ": " + uv_strerror(rc));
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&out),
      [](uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
        buf->base = new char[suggested];
        buf->len = suggested;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        std::unique_ptr<char[]> owned(buf->base);
        auto* c = static_cast<Ctx*>(s->data);
        if (n > 0 && c->output.size() < 64 * 1024) c->output.append(buf->base, static_cast<std::size_t>(n));
        if (n < 0) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
      });
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (ctx.status == 0 && ctx.signal == 0) return {};
  return tl::make_unexpected("haproxy -c " + config_path + " failed (exit " + std::to_string(ctx.status) + "): " +
                             ctx.output);
}

Supervisor::Supervisor(uv_loop_t* loop, Options options, Events events)
    : m_loop(loop), m_options(std::move(options)), m_events(std::move(events)) {
  m_timer = new uv_timer_t;
  uv_timer_init(m_loop, m_timer);
  m_timer->data = this;
}

Supervisor::~Supervisor() {
  // Never leave HAProxy running behind us unless release() said so.
  if (m_process != nullptr) {
    m_process->data = nullptr;
    uv_process_kill(m_process, SIGKILL);
  } else if (m_watch != nullptr) {
    ::kill(m_pid, SIGKILL);
    unwatch();
  }
  close_output();
  m_timer->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(m_timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

tl::expected<void, std::string> Supervisor::start() {
  if (auto ok = check_config(m_options.haproxy_binary, m_options.config_path); !ok) return ok;
  m_wanted = true;
  m_stopping = false;
  m_backoff_ms = m_options.restart_backoff_initial_ms;
  if (m_process == nullptr && m_watch == nullptr) spawn();
  return {};
}

tl::expected<void, std::string> Supervisor::adopt(int pid) {
  if (m_process != nullptr || m_watch != nullptr) return tl::make_unexpected(std::string("HAProxy is already supervised"));
  // glibc 2.36's <sys/pidfd.h> lacks extern "C"; the system call is the same.
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
  if (fd < 0) return tl::make_unexpected("cannot watch HAProxy pid " + std::to_string(pid) + ": " + std::strerror(errno));
  // A pidfd turns readable when the process exits.
  auto* watch = new uv_poll_t;
  if (int rc = uv_poll_init(m_loop, watch, fd); rc < 0) {
    delete watch;
    ::close(fd);
    return tl::make_unexpected(std::string("cannot watch HAProxy: ") + uv_strerror(rc));
  }
  watch->data = this;
  uv_poll_start(watch, UV_READABLE, [](uv_poll_t* handle, int, int) {
    auto* self = static_cast<Supervisor*>(handle->data);
    if (self == nullptr) return;
    self->unwatch();
    // Not our child: its exit status belongs to whoever reaps it.
    self->on_exit(-1, 0);
  });
  m_watch = watch;
  m_pid = pid;
  m_wanted = true;
  m_stopping = false;
  m_backoff_ms = m_options.restart_backoff_initial_ms;
  m_started_ms = uv_now(m_loop);
  return {};
}

void Supervisor::unwatch() {
  if (m_watch == nullptr) return;
  uv_poll_stop(m_watch);
  m_watch->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(m_watch), [](uv_handle_t* h) {
    auto* poll = reinterpret_cast<uv_poll_t*>(h);
    uv_os_fd_t fd = -1;
    if (uv_fileno(h, &fd) == 0) ::close(fd);
    delete poll;
  });
  m_watch = nullptr;
}

int Supervisor::signal_haproxy(int signal) {
  if (m_process != nullptr) return uv_process_kill(m_process, signal);
  if (m_watch != nullptr) return ::kill(m_pid, signal) == 0 ? 0 : uv_translate_sys_error(errno);
  return UV_ESRCH;
}

void Supervisor::release() {
  m_wanted = false;
  uv_timer_stop(m_timer);
  if (m_process != nullptr) {
    // Closing the handle neither signals nor waits for the process.
    m_process->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(m_process), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    m_process = nullptr;
  }
  // What it writes from now on has no reader (HAProxy ignores SIGPIPE).
  close_output();
  unwatch();
  m_pid = 0;
}

tl::expected<void, std::string> Supervisor::reload() {
  if (auto ok = check_config(m_options.haproxy_binary, m_options.config_path); !ok) return ok;
  if (m_process == nullptr && m_watch == nullptr) return tl::make_unexpected(std::string("HAProxy is not running"));
  int rc = signal_haproxy(SIGUSR2);
  if (rc < 0) return tl::make_unexpected(std::string("SIGUSR2: ") + uv_strerror(rc));
  if (m_events.on_reloaded) m_events.on_reloaded(m_pid);
  return {};
}

void Supervisor::spawn() {
  std::vector<std::string> args = {m_options.haproxy_binary, "-W", "-db", "-f", m_options.config_path};
  for (const auto& a : m_options.extra_args) args.push_back(a);
  auto argv = make_argv(args);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_IGNORE;
  stdio[2].flags = UV_IGNORE;
  // One pipe for both streams keeps HAProxy's lines in the order it wrote them.
  uv_file output[2] = {-1, -1};
  if (m_options.inherit_output) {
    if (const int made = uv_pipe(output, 0, 0); made < 0) {
      spdlog::warn("HAProxy: no pipe for its output ({}); it is discarded", uv_strerror(made));
    } else {
      for (int i = 1; i < 3; ++i) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = output[1];
      }
    }
  }
  uv_process_options_t opt{};
  opt.file = argv[0];
  opt.args = argv.data();
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = [](uv_process_t* p, std::int64_t status, int sig) {
    auto* self = static_cast<Supervisor*>(p->data);
    uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    if (self != nullptr) self->on_exit(status, sig);
  };
  auto* proc = new uv_process_t;
  proc->data = this;
  int rc = uv_spawn(m_loop, proc, &opt);
  if (output[1] >= 0) ::close(output[1]);
  if (rc < 0) {
    if (output[0] >= 0) ::close(output[0]);
    uv_close(reinterpret_cast<uv_handle_t*>(proc), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    if (m_events.on_spawn_error) m_events.on_spawn_error("cannot run " + m_options.haproxy_binary + ": " + uv_strerror(rc));
    schedule_restart();
    return;
  }
  m_process = proc;
  m_pid = proc->pid;
  m_started_ms = uv_now(m_loop);
  if (output[0] >= 0) start_output(output[0]);
  if (m_events.on_started) m_events.on_started(m_pid);
}

void Supervisor::on_exit(std::int64_t status, int signal) {
  m_process = nullptr;
  m_pid = 0;
  uv_timer_stop(m_timer);
  if (m_events.on_exited) m_events.on_exited(status, signal);
  if (m_stopping || !m_wanted) {
    if (m_stop_done) {
      auto done = std::move(m_stop_done);
      m_stop_done = nullptr;
      done();
    }
    return;
  }
  if (uv_now(m_loop) - m_started_ms >= m_options.stable_after_ms) m_backoff_ms = m_options.restart_backoff_initial_ms;
  schedule_restart();
}

void Supervisor::schedule_restart() {
  if (!m_wanted || m_stopping) return;
  const std::uint64_t delay = m_backoff_ms;
  m_backoff_ms = std::min(m_backoff_ms * 2 + 1, m_options.restart_backoff_max_ms);
  uv_timer_start(m_timer, [](uv_timer_t* t) {
    auto* self = static_cast<Supervisor*>(t->data);
    if (self == nullptr || !self->m_wanted || self->m_stopping || self->m_process != nullptr ||
        self->m_watch != nullptr) {
      return;
    }
    ++self->m_restarts;
    self->spawn();
  }, delay, 0);
}

void Supervisor::stop(std::function<void()> done) {
  m_wanted = false;
  m_stopping = true;
  uv_timer_stop(m_timer);
  if (m_process == nullptr && m_watch == nullptr) {
    if (done) done();
    return;
  }
  m_stop_done = std::move(done);
  (void)signal_haproxy(SIGTERM);
  uv_timer_start(m_timer, [](uv_timer_t* t) {
    auto* self = static_cast<Supervisor*>(t->data);
    if (self != nullptr) (void)self->signal_haproxy(SIGKILL);
  }, m_options.stop_timeout_ms, 0);
}

}  // namespace tide::haproxy
