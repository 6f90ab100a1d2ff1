#include "tests/unit/protocol/sample_messages.hpp"

namespace tide::protocol::testing {

Report sample_report() {
  Report r;
  r.seq = 4242;
  r.timestamp_ms = 1'764'220'800'123;
  r.ready = true;
  r.ready_reason = "all readiness probes pass";
  r.healthy = false;
  r.health_reason = "disk probe failing: /var 97% full";
  r.draining = true;
  r.probes = {
      {"http-ready", ProbeKind::Http, true, "200 OK", 12},
      {"tcp-8080", ProbeKind::Tcp, true, "", 1},
      {"disk-check", ProbeKind::Exec, false, "exit status 2: /var 97% full", 340},
      {"sd-notify", ProbeKind::Notify, true, "READY=1", 0},
  };
  r.metrics.cpu_pct = 37.25;
  r.metrics.memory_pct = 61.5;
  r.metrics.load1 = 1.75;
  r.metrics.net_in_bps = 1'250'000.0;
  r.metrics.net_out_bps = 3'500'000.5;
  r.metrics.tcp_established = 812;
  r.metrics.custom = {{"queue_depth", 17.0}, {"requests_per_s", 950.5}, {"temperature_delta", -2.25}};
  return r;
}

std::vector<Sample> sample_messages() {
  std::vector<Sample> out;
  out.push_back({"hello", Hello{"i-0a1b2c3d", "tok_9f8e7d6c5b4a", "0.1.0", "web-7.example.internal",
                                "127.0.1.7", 8080, {{"group", "web"}, {"zone", "local-a"}},
                                {"drain", "hooks", "shutdown"}}});
  out.push_back({"welcome", Welcome{"s-5e3a9c01", 2000, 500, 4}});
  out.push_back({"report", sample_report()});
  out.push_back({"heartbeat", Heartbeat{}});
  out.push_back({"drain", Drain{7, 30'000}});
  out.push_back({"undrain", Undrain{8}});
  out.push_back({"hook_run", HookRun{9, "pre-stop", "terminating", 120'000}});
  out.push_back({"hook_result", HookResult{9, "pre-stop", -1, true, "flushing caches...\nkilled after 120 s\n"}});
  out.push_back({"shutdown", Shutdown{10, 15'000}});
  out.push_back({"ack", Ack{11}});
  out.push_back({"error", Error{ErrorCode::UnknownSession, "no session for this routing id; say HELLO", 12}});
  out.push_back({"goodbye", Goodbye{"agent stopping (SIGTERM)"}});
  return out;
}

}  // namespace tide::protocol::testing
