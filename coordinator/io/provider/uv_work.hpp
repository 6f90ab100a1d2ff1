// Runs a blocking function on the libuv thread pool and hands its result back
// on the loop thread. Used for file and /proc work so that the loop never
// blocks. The work function must not touch loop-owned state; pass it data by
// value. Exceptions thrown by the work are turned into a ProviderError so
// they never cross into a libuv callback.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/io/provider/provider.hpp"

namespace tide::provider {

// A one-shot timer owned by itself: fires once after delay_ms, then closes.
inline void run_after(uv_loop_t* loop, std::uint64_t delay_ms, std::function<void()> fn) {
  struct Timer {
    uv_timer_t handle{};
    std::function<void()> fn;
  };
  auto* timer = new Timer{};
  timer->fn = std::move(fn);
  uv_timer_init(loop, &timer->handle);
  timer->handle.data = timer;
  uv_timer_start(
      &timer->handle,
      [](uv_timer_t* handle) {
        auto* t = static_cast<Timer*>(handle->data);
        auto fn_copy = std::move(t->fn);
        uv_close(reinterpret_cast<uv_handle_t*>(handle),
                 [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
        fn_copy();
      },
      delay_ms, 0);
}

template <typename T>
using Outcome = tl::expected<T, ProviderError>;

template <typename T>
void run_in_pool(uv_loop_t* loop, std::function<Outcome<T>()> work,
                 std::function<void(Outcome<T>)> done) {
  struct Job {
    uv_work_t req{};
    std::function<Outcome<T>()> work;
    std::function<void(Outcome<T>)> done;
    std::optional<Outcome<T>> result;
  };
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->req.data = job.get();
  const int rc = uv_queue_work(
      loop, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<Job*>(req->data);
        try {
          j->result.emplace(j->work());
        } catch (const std::exception& e) {
          j->result.emplace(tl::unexpected(ProviderError{e.what(), true}));
        } catch (...) {
          j->result.emplace(tl::unexpected(ProviderError{"unknown exception in worker", true}));
        }
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<Job> j(static_cast<Job*>(req->data));
        if (status != 0 || !j->result) {
          j->done(tl::unexpected(ProviderError{
              std::string("thread pool work failed: ") + uv_strerror(status), true}));
          return;
        }
        j->done(std::move(*j->result));
      });
  if (rc != 0) {
    // Not queued: still report on a later loop turn, never inside the call.
    run_after(loop, 0, [cb = std::move(job->done), rc] {
      cb(tl::unexpected(ProviderError{std::string("uv_queue_work: ") + uv_strerror(rc), true}));
    });
    return;
  }
  static_cast<void>(job.release());
}

}  // namespace tide::provider
