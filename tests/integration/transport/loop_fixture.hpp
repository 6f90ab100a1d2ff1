// A real libuv loop and ZeroMQ context for the transport tests. Every wait is
// bounded by a deadline, so a transport bug fails a test instead of hanging it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <uv.h>
#include <zmq.hpp>

namespace tide::transport::test {

inline std::vector<std::uint8_t> bytes(const std::string& text) {
  return std::vector<std::uint8_t>(text.begin(), text.end());
}

inline std::string text(std::span<const std::uint8_t> frame) {
  return std::string(frame.begin(), frame.end());
}

class LoopFixture {
 public:
  LoopFixture() {
    uv_loop_init(&m_loop);
    uv_timer_init(&m_loop, &m_timer);
    m_timer.data = this;
  }
  // Transport objects declared in the test body are destroyed (closed) first;
  // then the loop runs once more to release their handles.
  ~LoopFixture() {
    uv_close(reinterpret_cast<uv_handle_t*>(&m_timer), nullptr);
    uv_run(&m_loop, UV_RUN_DEFAULT);
    uv_loop_close(&m_loop);
  }
  LoopFixture(const LoopFixture&) = delete;
  LoopFixture& operator=(const LoopFixture&) = delete;

  uv_loop_t* loop() { return &m_loop; }
  zmq::context_t& context() { return m_context; }

  // Runs the loop until done() holds (checked every 2 ms and after each
  // callback batch) or timeout_ms passes. Returns done().
  bool run_until(std::function<bool()> done, std::uint64_t timeout_ms = 5000) {
    if (done()) return true;
    m_done = std::move(done);
    m_deadline_ms = uv_now(&m_loop) + timeout_ms;
    uv_timer_start(&m_timer, &LoopFixture::on_tick, 2, 2);
    uv_run(&m_loop, UV_RUN_DEFAULT);
    uv_timer_stop(&m_timer);
    const bool ok = m_done();
    m_done = nullptr;
    return ok;
  }

  // Runs the loop for duration_ms, whatever happens.
  void run_for(std::uint64_t duration_ms) {
    (void)run_until([] { return false; }, duration_ms);
  }

 private:
  static void on_tick(uv_timer_t* timer) {
    auto* self = static_cast<LoopFixture*>(timer->data);
    if (self->m_done() || uv_now(&self->m_loop) >= self->m_deadline_ms) uv_stop(&self->m_loop);
  }

  uv_loop_t m_loop{};
  uv_timer_t m_timer{};
  std::function<bool()> m_done;
  std::uint64_t m_deadline_ms = 0;
  // Terminated after the destructor body, when every socket is closed.
  zmq::context_t m_context;
};

}  // namespace tide::transport::test
