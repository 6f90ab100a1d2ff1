// LoadBalancer: the coordinator's HAProxy, whole. It owns the Supervisor (an
// embedded HAProxy: started, or adopted from an earlier coordinator of the
// same state directory), the RuntimeClient on its stats socket and the Driver
// that keeps the slots. It writes haproxy.cfg with the digest line that tells
// the next start whether a running HAProxy has the wanted configuration, and
// it runs the reconciles once the fleet is restored.
//
// The coordinator asks it to start, hands it the moment its fleet is
// restored, executes the core's LB commands through driver(), samples the
// members' traffic (sample_traffic), and stops it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/io/haproxy/config.hpp"
#include "coordinator/io/haproxy/traffic.hpp"

namespace tide::haproxy {

class AccessLogSink;
class Driver;
class RuntimeClient;
class Supervisor;

class LoadBalancer {
 public:
  struct Options {
    // true: tide starts and supervises HAProxy; false: an HAProxy tide did
    // not start is driven through socket_path (its config declares the slots).
    bool embedded = true;
    std::string socket_path;  // runtime API socket
    // Embedded only: where HAProxy writes its pid, and the configuration file
    // tide renders (its first line holds the digest).
    std::string pid_file;
    std::string config_path;
    std::string haproxy_binary = "haproxy";
    std::vector<BackendSpec> backends;    // name and slot_count also shape the Driver
    std::vector<FrontendSpec> frontends;  // embedded only: shared frontends
    std::uint64_t reconcile_interval_ms = 5000;
    // Embedded only. true: stop() leaves HAProxy serving for the next
    // coordinator to adopt; false: stop() stops it.
    bool keep_running_on_stop = false;
    // The hex digest of a rendered configuration (the coordinator's
    // sha256_hex): equal digests mean "same configuration" at the next start.
    std::function<std::string(std::string_view)> digest;
    // Embedded only. The TLS certificates: tide reads `cert` (and `key`),
    // checks them and writes the PEM HAProxy loads to `file` (a path a
    // FrontendSpec names); a changed source is loaded into the running
    // HAProxy over the runtime API, without a reload.
    struct Certificate {
      std::string file;
      std::string cert;
      std::string key;                    // "": the key is in `cert`
      std::uint32_t watch_interval_ms = 0;  // poll the sources; 0: only refresh_certificates()
    };
    std::vector<Certificate> certificates;
    // Embedded only. Access logs: the unix socket a FrontendSpec's access_log
    // names, and where its lines go ("" = the coordinator's log).
    struct AccessLog {
      std::string frontend;
      std::string socket;
      std::string file;
    };
    std::vector<AccessLog> access_logs;
  };

  LoadBalancer(uv_loop_t* loop, Options options);
  ~LoadBalancer();
  LoadBalancer(const LoadBalancer&) = delete;
  LoadBalancer& operator=(const LoadBalancer&) = delete;

  // Embedded: adopts an HAProxy left serving by an earlier coordinator, or
  // starts one. Then opens the runtime API client and the driver. The
  // reconciles wait for fleet_restored().
  [[nodiscard]] tl::expected<void, std::string> start();
  // HAProxy was already running at start and kept serving.
  [[nodiscard]] bool adopted() const { return m_adopted; }
  // The membership driver; valid once start() has succeeded.
  [[nodiscard]] Driver& driver() { return *m_driver; }
  // The fleet is restored: its load-balancer membership is what HAProxy should
  // have. An adopted HAProxy with an older configuration is reloaded with its
  // membership written in; otherwise the reconciles begin.
  void fleet_restored();
  // Stops the reconciles, then leaves HAProxy serving (keep_running_on_stop)
  // or stops it. `done` runs once that is done.
  void stop(std::function<void()> done);

  // Re-reads the certificate sources and loads each one that changed into
  // HAProxy (`set ssl cert` + `commit ssl cert`): connections in flight keep
  // their session, new handshakes get the new certificate, nothing is
  // reloaded. A source that fails its checks is logged and the certificate
  // in use stays.
  void refresh_certificates();

  // Applies a re-read configuration to the running load balancer (SIGHUP):
  // the frontends, the backends' time-outs, the certificates and the access
  // logs. When the rendered HAProxy configuration changed, HAProxy is
  // reloaded seamlessly with the current membership written in. The
  // backends' names and slots must be those running (the caller checks).
  // Answers what was applied, one phrase each ("HAProxy configuration
  // (frontends, time-outs)", "access logs reopened"), or an error and then
  // nothing changed.
  [[nodiscard]] tl::expected<std::vector<std::string>, std::string> apply(std::vector<BackendSpec> backends,
                                                                          std::vector<FrontendSpec> frontends,
                                                                          std::vector<Options::Certificate> certificates,
                                                                          std::vector<Options::AccessLog> access_logs);

  // Samples HAProxy's per-server statistics with one `show stat -1 4 -1`
  // (servers of every proxy) over the runtime API connection and answers one
  // ServerTraffic for every slot that holds an instance (Driver::assignment
  // when the answer arrives). Slots without an instance are left out.
  //
  // `done` runs exactly once, on the loop and never inside this call; the
  // loop is never blocked. It gets:
  //  - an empty vector when there is nothing to sample: no backends are
  //    configured, or start() has not succeeded;
  //  - an error when HAProxy is not running (embedded and down, or its socket
  //    cannot be reached), when its answer cannot be parsed, after stop(), and
  //    when a reload overlaps the sample: from the moment a reload is
  //    signalled until a new worker answers on the socket, and for a sample
  //    sent before that whose answer comes in after it. The old and the new
  //    worker count separately (the new one from zero), so such an answer
  //    could belong to either and is not handed out.
  // Counters restart from zero after a reload or a restart of HAProxy.
  // If the LoadBalancer is destroyed before the answer, `done` is dropped
  // without being called, as the runtime client drops its commands.
  void sample_traffic(
      std::function<void(tl::expected<std::vector<ServerTraffic>, std::string>)> done);

 private:
  void schedule_reconcile(std::uint64_t delay_ms);
  void start_reconciles(std::uint64_t first_delay_ms);
  void reload_with_membership();
  void await_new_worker(std::string old_worker, int polls_left);
  [[nodiscard]] tl::expected<void, std::string> install_certificates();
  [[nodiscard]] tl::expected<void, std::string> start_access_logs();
  void watch_certificates();
  void push_certificate(const std::string& file, const std::string& text, const std::string& serial);

  uv_loop_t* m_loop;
  Options m_options;
  std::unique_ptr<Supervisor> m_supervisor;
  std::unique_ptr<RuntimeClient> m_client;
  std::unique_ptr<Driver> m_driver;
  bool m_stopping = false;
  // The fleet is restored: its load-balancer membership is what HAProxy should
  // have, so a reconcile may run (before that it would empty the slots).
  bool m_fleet_restored = false;
  bool m_adopted = false;  // HAProxy was already running at start and kept serving
  // The adopted HAProxy runs an older configuration: once the fleet is
  // restored it is reloaded with the new one, its membership written in.
  bool m_reload_pending = false;
  // A reload was signalled and no new worker has answered on the socket yet.
  bool m_reloading = false;
  std::uint64_t m_reloads = 0;  // reloads signalled so far: a sample spanning one is refused
  // Certificate file -> the PEM text HAProxy has loaded (from the file at its
  // start, or pushed over the runtime API); a source that differs is pushed.
  std::map<std::string, std::string> m_loaded;
  std::map<std::string, bool> m_pushing;  // a push of this file is under way
  std::vector<std::unique_ptr<AccessLogSink>> m_access_logs;
  std::vector<uv_fs_poll_t*> m_watches;  // certificate sources being watched
  ConfigSpec m_spec;     // embedded: the configuration without slots in use
  std::string m_digest;  // digest of its rendering: "same configuration" at the next start
};

}  // namespace tide::haproxy
