// bench_transport: how much of raw ZeroMQ throughput tide's transport keeps.
//
// A sender thread (own context, blocking sends on a DEALER) pushes N REPORT
// frames of 150-250 bytes (protocol::encode) over tcp://127.0.0.1 to
//   (a) a Router driven by a libuv loop on the main thread that decodes each
//       frame with protocol::decode, and
//   (b) a bare ROUTER on the main thread in a blocking zmq_recv loop (no
//       decode, no libuv),
// each with and without CURVE. A last column runs (a) without decode, to
// tell the transport's cost from the codec's. The rate is measured from the first to the last
// frame received.  Usage: bench_transport [frames-per-run]   (default 300000)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <uv.h>
#include <zmq.hpp>

#include "protocol/codec.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/curve.hpp"
#include "protocol/transport/router.hpp"
#include "protocol/transport/zap_handler.hpp"

namespace proto = tide::protocol;
namespace tx = tide::transport;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::uint8_t> sample_report(std::uint64_t seq) {
  proto::Report report;
  report.seq = seq;
  report.timestamp_ms = 1'790'000'000'000ULL + seq;
  report.ready = true;
  report.ready_reason = "ok";
  report.healthy = true;
  report.probes.push_back(proto::ProbeResult{"http", proto::ProbeKind::Http, true, "ok", 3});
  report.metrics.cpu_pct = 37.5;
  report.metrics.memory_pct = 61.25;
  report.metrics.load1 = 0.82;
  report.metrics.tcp_established = 120;
  return proto::encode(proto::Message{report});
}

struct Curve {
  tx::CurveKeyPair server;
  tx::CurveKeyPair client;
};

// Sends `count` copies of `frame` from its own thread and context.
std::thread start_sender(std::string endpoint, std::vector<std::uint8_t> frame, std::size_t count,
                         const Curve* curve) {
  return std::thread([endpoint = std::move(endpoint), frame = std::move(frame), count, curve] {
    zmq::context_t context;
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::routing_id, std::string("a:bench"));
    if (curve != nullptr) {
      dealer.set(zmq::sockopt::curve_serverkey, curve->server.public_z85);
      dealer.set(zmq::sockopt::curve_publickey, curve->client.public_z85);
      dealer.set(zmq::sockopt::curve_secretkey, curve->client.secret_z85);
    }
    dealer.connect(endpoint);
    for (std::size_t i = 0; i < count; ++i) {
      (void)dealer.send(zmq::buffer(frame), zmq::send_flags::none);
    }
    // Keep the connection open until the receiver is done (linger 0 would
    // otherwise drop what is still queued).
    std::this_thread::sleep_for(std::chrono::seconds(2));
  });
}

double rate(std::size_t count, Clock::time_point first, Clock::time_point last) {
  const double seconds = std::chrono::duration<double>(last - first).count();
  return seconds > 0 ? static_cast<double>(count - 1) / seconds : 0.0;
}

// (a) tide_transport in a libuv loop, decoding every frame.
double run_glue(std::size_t count, const Curve* curve, bool decode, std::size_t& decode_failures) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  zmq::context_t context;
  double result = 0;
  {
    tx::ZapHandler zap(&loop, context, [](const tx::ZapRequest&) {
      return tx::ZapDecision{true, "", ""};
    });
    tx::RouterOptions options;
    options.endpoint = "tcp://127.0.0.1:*";
    if (curve != nullptr) {
      if (!zap.bind()) std::abort();
      options.curve_server_secret_z85 = curve->server.secret_z85;
    }
    tx::Router router(&loop, context, options);
    std::size_t received = 0;
    Clock::time_point first{};
    Clock::time_point last{};
    router.on_message([&](const tx::PeerId&, std::string_view, std::span<const std::uint8_t> frame) {
      if (received == 0) first = Clock::now();
      if (decode && !proto::decode(frame)) ++decode_failures;
      if (++received == count) {
        last = Clock::now();
        uv_stop(&loop);
      }
    });
    auto endpoint = router.bind();
    if (!endpoint) std::abort();
    // A deadline so a lost frame ends the run instead of hanging it.
    uv_timer_t deadline;
    uv_timer_init(&loop, &deadline);
    deadline.data = &loop;
    uv_timer_start(&deadline, [](uv_timer_t* t) { uv_stop(static_cast<uv_loop_t*>(t->data)); },
                   60'000, 0);
    std::thread sender = start_sender(*endpoint, sample_report(1), count, curve);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (received == count) result = rate(count, first, last);
    else std::fprintf(stderr, "glue: only %zu of %zu frames arrived\n", received, count);
    router.close();
    zap.close();
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    sender.join();
  }
  uv_loop_close(&loop);
  return result;
}

// (b) a bare blocking zmq_recv loop on the same kind of socket.
double run_bare(std::size_t count, const Curve* curve) {
  zmq::context_t context;
  zmq::socket_t zap(context, zmq::socket_type::rep);
  std::atomic<bool> stop{false};
  std::thread zap_thread;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(proto::kMaxFrameBytes));
  router.set(zmq::sockopt::rcvtimeo, 60'000);
  if (curve != nullptr) {
    // The same policy as (a): a ZAP handler that accepts every key.
    zap.bind(tx::kZapEndpoint);
    zap.set(zmq::sockopt::rcvtimeo, 100);
    zap_thread = std::thread([&] {
      while (!stop) {
        std::vector<zmq::message_t> request;
        zmq::message_t part;
        if (!zap.recv(part)) continue;
        bool more = part.more();
        request.push_back(std::move(part));
        while (more) {
          zmq::message_t next;
          (void)zap.recv(next);
          more = next.more();
          request.push_back(std::move(next));
        }
        const std::string id = request.size() > 1 ? request[1].to_string() : "";
        zap.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
        zap.send(zmq::buffer(id), zmq::send_flags::sndmore);
        zap.send(zmq::str_buffer("200"), zmq::send_flags::sndmore);
        zap.send(zmq::str_buffer("OK"), zmq::send_flags::sndmore);
        zap.send(zmq::str_buffer("bench"), zmq::send_flags::sndmore);
        zap.send(zmq::str_buffer(""), zmq::send_flags::none);
      }
    });
    router.set(zmq::sockopt::curve_server, true);
    router.set(zmq::sockopt::curve_secretkey, curve->server.secret_z85);
    router.set(zmq::sockopt::zap_domain, "tide");
  }
  router.bind("tcp://127.0.0.1:*");
  std::thread sender =
      start_sender(router.get(zmq::sockopt::last_endpoint), sample_report(1), count, curve);
  std::vector<std::uint8_t> id_buf(256);
  std::vector<std::uint8_t> frame_buf(proto::kMaxFrameBytes);
  Clock::time_point first{};
  std::size_t received = 0;
  for (; received < count; ++received) {
    if (zmq_recv(router.handle(), id_buf.data(), id_buf.size(), 0) < 0) break;
    if (zmq_recv(router.handle(), frame_buf.data(), frame_buf.size(), 0) < 0) break;
    if (received == 0) first = Clock::now();
  }
  const Clock::time_point last = Clock::now();
  stop = true;
  if (zap_thread.joinable()) zap_thread.join();
  sender.join();
  if (received != count) {
    std::fprintf(stderr, "bare: only %zu of %zu frames arrived\n", received, count);
    return 0;
  }
  return rate(count, first, last);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300'000;
  if (count < 2) {
    std::fprintf(stderr, "usage: bench_transport [frames-per-run >= 2]\n");
    return 2;
  }
  const auto frame = sample_report(1);
  auto server = tx::generate_curve_keypair();
  auto client = tx::generate_curve_keypair();
  if (!server || !client) return 1;
  const Curve curve{*server, *client};

  std::printf("bench_transport: %zu REPORT frames of %zu bytes per run, DEALER -> ROUTER, "
              "tcp://127.0.0.1, sender in its own thread\n",
              count, frame.size());
  std::printf("%-8s %22s %22s %8s %22s\n", "mode", "(a) glue+decode msg/s", "(b) bare recv msg/s",
              "(a)/(b)", "glue, no decode msg/s");
  int status = 0;
  for (const Curve* c : {static_cast<const Curve*>(nullptr), &curve}) {
    std::size_t decode_failures = 0;
    const double glue = run_glue(count, c, true, decode_failures);
    const double bare = run_bare(count, c);
    const double glue_only = run_glue(count, c, false, decode_failures);
    std::printf("%-8s %22.0f %22.0f %8.2f %22.0f\n", c != nullptr ? "curve" : "plain", glue, bare,
                bare > 0 ? glue / bare : 0.0, glue_only);
    if (decode_failures != 0) {
      std::fprintf(stderr, "%zu frames failed to decode\n", decode_failures);
      status = 1;
    }
    if (glue == 0 || bare == 0) status = 1;
  }
  return status;
}
