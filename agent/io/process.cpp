#include "agent/io/process.hpp"

#include <signal.h>

#include <array>
#include <memory>

namespace tide::agent {
namespace {

struct Run {
  uv_loop_t* loop = nullptr;
  uv_process_t process{};
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  std::size_t max_output = 0;
  ProcessResult result;
  ProcessDoneFn done;
  std::uint64_t started_ms = 0;
  bool exited = false;
  int open_pipes = 0;
  int open_handles = 0;
  bool reported = false;
  std::array<char, 4096> buffer{};
};

void on_handle_closed(uv_handle_t* handle) {
  auto* run = static_cast<Run*>(handle->data);
  if (--run->open_handles == 0) delete run;
}

void close_handle(Run* run, uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, on_handle_closed);
  (void)run;
}

void maybe_finish(Run* run) {
  if (run->reported || !run->exited || run->open_pipes > 0) return;
  run->reported = true;
  run->result.duration_ms = uv_now(run->loop) - run->started_ms;
  uv_timer_stop(&run->timer);
  auto done = std::move(run->done);
  auto result = std::move(run->result);
  close_handle(run, reinterpret_cast<uv_handle_t*>(&run->timer));
  close_handle(run, reinterpret_cast<uv_handle_t*>(&run->process));
  if (done) done(result);
}

void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* run = static_cast<Run*>(handle->data);
  *buf = uv_buf_init(run->buffer.data(), static_cast<unsigned>(run->buffer.size()));
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* run = static_cast<Run*>(stream->data);
  if (nread > 0) {
    auto& out = run->result.output;
    out.append(buf->base, static_cast<std::size_t>(nread));
    if (out.size() > run->max_output) out.erase(0, out.size() - run->max_output);
    return;
  }
  if (nread < 0) {  // EOF or error: this pipe is done
    uv_read_stop(stream);
    close_handle(run, reinterpret_cast<uv_handle_t*>(stream));
    --run->open_pipes;
    maybe_finish(run);
  }
}

void on_exit(uv_process_t* process, int64_t exit_status, int term_signal) {
  auto* run = static_cast<Run*>(process->data);
  run->exited = true;
  run->result.exit_status = term_signal != 0 ? -1 : static_cast<int>(exit_status);
  // Whatever the shell left behind holds our pipes open; the group goes too.
  ::kill(-process->pid, SIGKILL);
  maybe_finish(run);
}

void on_timeout(uv_timer_t* timer) {
  auto* run = static_cast<Run*>(timer->data);
  run->result.timed_out = true;
  if (!run->exited) ::kill(-run->process.pid, SIGKILL);
}

}  // namespace

bool run_process(uv_loop_t* loop, const std::string& command, std::uint32_t timeout_ms,
                 std::size_t max_output, ProcessDoneFn done) {
  auto* run = new Run;
  run->loop = loop;
  run->max_output = max_output;
  run->done = std::move(done);
  run->started_ms = uv_now(loop);
  run->process.data = run;
  run->out.data = run;
  run->err.data = run;
  run->timer.data = run;
  uv_pipe_init(loop, &run->out, 0);
  uv_pipe_init(loop, &run->err, 0);
  uv_timer_init(loop, &run->timer);
  run->open_handles = 3;

  const char* args[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&run->out);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&run->err);
  uv_process_options_t options{};
  options.file = args[0];
  options.args = const_cast<char**>(args);
  options.exit_cb = on_exit;
  options.stdio_count = 3;
  options.stdio = stdio;
  // Its own process group (setsid), so a timeout can kill the whole tree.
  options.flags = UV_PROCESS_DETACHED;

  const int rc = uv_spawn(loop, &run->process, &options);
  if (rc != 0) {
    run->result.error = std::string("cannot start /bin/sh: ") + uv_strerror(rc);
    run->result.exit_status = -1;
    auto cb = std::move(run->done);
    auto result = run->result;
    close_handle(run, reinterpret_cast<uv_handle_t*>(&run->out));
    close_handle(run, reinterpret_cast<uv_handle_t*>(&run->err));
    close_handle(run, reinterpret_cast<uv_handle_t*>(&run->timer));
    // uv_spawn failed: the process handle was never initialised as active but
    // libuv still requires it to be closed.
    ++run->open_handles;
    close_handle(run, reinterpret_cast<uv_handle_t*>(&run->process));
    if (cb) cb(result);
    return false;
  }
  ++run->open_handles;  // the process handle
  run->open_pipes = 2;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&run->out), on_alloc, on_read);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&run->err), on_alloc, on_read);
  uv_timer_start(&run->timer, on_timeout, timeout_ms, 0);
  return true;
}

}  // namespace tide::agent
