#include "coordinator/io/provider/subprocess.hpp"

#include <array>
#include <csignal>
#include <memory>
#include <utility>

#include "common/process/sigpipe.hpp"

namespace tide::provider {
namespace {

// After the process has exited, its pipes may still be held open by a
// background child it left behind; give them this long to reach EOF.
constexpr std::uint64_t kDrainAfterExitMs = 500;

struct Run {
  uv_loop_t* loop = nullptr;
  SubprocessRequest request;
  std::function<void(tl::expected<SubprocessResult, std::string>)> done;
  SubprocessResult result;
  std::string spawn_error;

  uv_process_t process{};
  uv_pipe_t in{};
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  uv_write_t write_req{};
  std::array<char, 64 * 1024> buffer{};

  int open_handles = 0;
  bool exited = false;
  bool out_open = false;
  bool err_open = false;
  bool in_open = false;

  void close(uv_handle_t* handle) {
    if (uv_is_closing(handle) != 0) return;
    uv_close(handle, [](uv_handle_t* h) {
      auto* run = static_cast<Run*>(h->data);
      if (--run->open_handles == 0) run->finish();
    });
  }

  void close_pipe(uv_pipe_t& pipe, bool& open) {
    if (!open) return;
    open = false;
    close(reinterpret_cast<uv_handle_t*>(&pipe));
  }

  void finish() {
    auto callback = std::move(done);
    tl::expected<SubprocessResult, std::string> outcome =
        spawn_error.empty() ? tl::expected<SubprocessResult, std::string>(std::move(result))
                            : tl::unexpected(std::move(spawn_error));
    delete this;
    callback(std::move(outcome));
  }

  void maybe_close_timer() {
    if (exited && !out_open && !err_open) {
      uv_timer_stop(&timer);
      close(reinterpret_cast<uv_handle_t*>(&timer));
    }
  }
};

void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* run = static_cast<Run*>(handle->data);
  *buf = uv_buf_init(run->buffer.data(), static_cast<unsigned>(run->buffer.size()));
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* run = static_cast<Run*>(stream->data);
  const bool is_out = stream == reinterpret_cast<uv_stream_t*>(&run->out);
  if (nread > 0) {
    std::string& sink = is_out ? run->result.stdout_data : run->result.stderr_data;
    const auto n = static_cast<std::size_t>(nread);
    const std::size_t room = sink.size() < run->request.max_output_bytes
                                 ? run->request.max_output_bytes - sink.size()
                                 : 0;
    if (n > room) run->result.output_truncated = true;
    sink.append(buf->base, std::min(n, room));
    return;
  }
  if (nread < 0) {  // UV_EOF or a read error: this stream is finished either way
    if (is_out) {
      run->close_pipe(run->out, run->out_open);
    } else {
      run->close_pipe(run->err, run->err_open);
    }
    run->maybe_close_timer();
  }
}

}  // namespace

void run_subprocess(uv_loop_t* loop, SubprocessRequest request,
                    std::function<void(tl::expected<SubprocessResult, std::string>)> done) {
  // Writing a script's stdin after it exited must fail, not kill us.
  ignore_sigpipe();
  auto* run = new Run{};
  run->loop = loop;
  run->request = std::move(request);
  run->done = std::move(done);

  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&run->process), reinterpret_cast<uv_handle_t*>(&run->in),
        reinterpret_cast<uv_handle_t*>(&run->out), reinterpret_cast<uv_handle_t*>(&run->err),
        reinterpret_cast<uv_handle_t*>(&run->timer)}) {
    h->data = run;
  }
  uv_pipe_init(loop, &run->in, 0);
  uv_pipe_init(loop, &run->out, 0);
  uv_pipe_init(loop, &run->err, 0);
  uv_timer_init(loop, &run->timer);
  run->open_handles = 5;  // process, 3 pipes, timer
  run->in_open = run->out_open = run->err_open = true;
  run->in.data = run->out.data = run->err.data = run->timer.data = run;

  std::vector<char*> argv;
  for (auto& a : run->request.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : run->request.env) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::array<uv_stdio_container_t, 3> stdio{};
  stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&run->in);
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&run->out);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&run->err);

  uv_process_options_t options{};
  options.exit_cb = [](uv_process_t* process, std::int64_t exit_status, int term_signal) {
    auto* r = static_cast<Run*>(process->data);
    r->exited = true;
    r->result.exit_status = exit_status;
    r->result.term_signal = term_signal;
    r->close(reinterpret_cast<uv_handle_t*>(process));
    if (!r->out_open && !r->err_open) {
      r->maybe_close_timer();
      return;
    }
    uv_timer_stop(&r->timer);
    uv_timer_start(
        &r->timer,
        [](uv_timer_t* t) {
          auto* rr = static_cast<Run*>(t->data);
          rr->result.output_truncated = true;
          rr->close_pipe(rr->out, rr->out_open);
          rr->close_pipe(rr->err, rr->err_open);
          rr->maybe_close_timer();
        },
        kDrainAfterExitMs, 0);
  };
  options.file = run->request.argv.empty() ? "" : run->request.argv[0].c_str();
  options.args = argv.data();
  options.env = envp.data();
  options.cwd = run->request.cwd.empty() ? nullptr : run->request.cwd.c_str();
  options.flags = UV_PROCESS_DETACHED;  // own process group, so a timeout kills all of it
  options.stdio_count = static_cast<int>(stdio.size());
  options.stdio = stdio.data();

  const int rc = run->request.argv.empty() ? UV_EINVAL : uv_spawn(loop, &run->process, &options);
  if (rc != 0) {
    run->spawn_error =
        "cannot start " +
        (run->request.argv.empty() ? std::string("(no program)") : run->request.argv[0]) + ": " +
        uv_strerror(rc);
    run->exited = true;
    run->in_open = false;
    run->close(reinterpret_cast<uv_handle_t*>(&run->in));
    run->close_pipe(run->out, run->out_open);
    run->close_pipe(run->err, run->err_open);
    run->close(reinterpret_cast<uv_handle_t*>(&run->timer));
    // uv_spawn leaves the handle initialised on failure; it must still be closed.
    run->close(reinterpret_cast<uv_handle_t*>(&run->process));
    return;
  }

  uv_read_start(reinterpret_cast<uv_stream_t*>(&run->out), on_alloc, on_read);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&run->err), on_alloc, on_read);

  uv_buf_t buf = uv_buf_init(run->request.stdin_data.data(),
                             static_cast<unsigned>(run->request.stdin_data.size()));
  run->write_req.data = run;
  const int wrc = uv_write(&run->write_req, reinterpret_cast<uv_stream_t*>(&run->in), &buf, 1,
                           [](uv_write_t* req, int) {
                             // A script that does not read its stdin is not an error.
                             auto* r = static_cast<Run*>(req->data);
                             r->in_open = false;
                             r->close(reinterpret_cast<uv_handle_t*>(&r->in));
                           });
  if (wrc != 0) {
    run->in_open = false;
    run->close(reinterpret_cast<uv_handle_t*>(&run->in));
  }

  // The loop's cached time may be well behind (spawning took a while on a
  // busy machine, or the loop had been idle): a time-out counted from it
  // would fire early.
  uv_update_time(loop);
  uv_timer_start(
      &run->timer,
      [](uv_timer_t* t) {
        auto* r = static_cast<Run*>(t->data);
        r->result.timed_out = true;
        // Negative pid: the whole process group the script leads.
        uv_kill(-r->process.pid, SIGKILL);
      },
      run->request.timeout_ms, 0);
}

}  // namespace tide::provider
