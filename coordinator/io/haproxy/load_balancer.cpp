#include "coordinator/io/haproxy/load_balancer.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <set>

#include "common/files/private_files.hpp"
#include "coordinator/io/haproxy/access_log.hpp"
#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/runtime_client.hpp"
#include "coordinator/io/haproxy/supervisor.hpp"
#include "coordinator/io/haproxy/tls.hpp"

namespace tide::haproxy {

namespace {

// The whole file ("" when it cannot be read); /proc files report no size.
std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text;
  char chunk[4096];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  return text;
}

// The configuration file starts with the digest of the configuration it was
// rendered from without slots in use ("same configuration" at the next start).
constexpr std::string_view kDigestPrefix = "# tide configuration ";

void write_haproxy_config(const std::filesystem::path& path, const std::string& digest,
                          const std::string& text) {
  std::ofstream(path) << kDigestPrefix << digest << "\n" << text;
}

std::string config_digest(const std::string& file_text) {
  if (file_text.rfind(kDigestPrefix, 0) != 0) return "";
  const auto end = file_text.find('\n');
  return file_text.substr(kDigestPrefix.size(), end == std::string::npos
                                                    ? std::string::npos
                                                    : end - kDigestPrefix.size());
}

// Runs `done(result)` on the loop's next iteration, from a timer that frees
// itself; it does not touch the LoadBalancer, so it may outlive it.
template <typename Result>
void answer_later(uv_loop_t* loop, std::function<void(Result)> done, Result result) {
  struct Later {
    uv_timer_t timer{};
    std::function<void(Result)> done;
    Result result;
  };
  auto* later = new Later{uv_timer_t{}, std::move(done), std::move(result)};
  uv_timer_init(loop, &later->timer);
  later->timer.data = later;
  uv_timer_start(
      &later->timer,
      [](uv_timer_t* t) {
        auto* l = static_cast<Later*>(t->data);
        auto run = std::move(l->done);
        Result r = std::move(l->result);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
        run(std::move(r));
      },
      0, 0);
}

// One "Name: value" line of `show info`; "" when absent.
std::string info_field(const std::string& info, const std::string& name) {
  const std::string key = name + ": ";
  for (std::size_t at = 0; at < info.size();) {
    std::size_t end = info.find('\n', at);
    if (end == std::string::npos) end = info.size();
    if (info.compare(at, key.size(), key) == 0) {
      return info.substr(at + key.size(), end - at - key.size());
    }
    at = end + 1;
  }
  return "";
}

// The HAProxy an earlier coordinator of this state directory started and left
// serving (it crashed, or stopped with keep_running_on_stop): the pid in its
// pid file, if that process is an haproxy running our configuration file.
// 0 when there is none (a recycled pid is never taken for ours).
int running_haproxy(const std::filesystem::path& pid_file,
                    const std::filesystem::path& config_path) {
  std::ifstream in(pid_file);
  int pid = 0;
  if (!(in >> pid) || pid <= 1) return 0;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!(comm >> name) || name != "haproxy") return 0;
  const std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  // Arguments are NUL-separated: match the config path as a whole argument.
  const std::string nul(1, '\0');
  if ((nul + cmdline).find(nul + config_path.string() + nul) == std::string::npos) return 0;
  return pid;
}

// Stops an HAProxy left behind whose configuration is not the one wanted now,
// so the new one can bind the same ports. Blocks at most ~2 s (start-up only).
void stop_haproxy(int pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
}

// Writes a certificate for HAProxy: a private file (a key is inside),
// replaced in one rename so HAProxy never reads half of it.
tl::expected<void, std::string> write_certificate(const std::filesystem::path& file, const std::string& text) {
  if (auto dir = files::ensure_private_dir(file.parent_path()); !dir) return tl::make_unexpected(dir.error());
  const std::string temp = file.string() + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, files::kPrivateFile);
  if (fd < 0) return tl::make_unexpected(temp + ": " + std::strerror(errno));
  ::fchmod(fd, files::kPrivateFile);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written || ::rename(temp.c_str(), file.c_str()) != 0) {
    ::unlink(temp.c_str());
    return tl::make_unexpected(file.string() + ": cannot write the certificate");
  }
  return {};
}

}  // namespace

LoadBalancer::LoadBalancer(uv_loop_t* loop, Options options)
    : m_loop(loop), m_options(std::move(options)) {}

LoadBalancer::~LoadBalancer() {
  for (auto* watch : m_watches) {
    uv_fs_poll_stop(watch);
    watch->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(watch), [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_poll_t*>(h); });
  }
}

tl::expected<void, std::string> LoadBalancer::install_certificates() {
  // Every source is checked before any file is written.
  std::map<std::string, std::string> texts;
  for (const auto& certificate : m_options.certificates) {
    auto bundle = load_pem_bundle(certificate.cert, certificate.key);
    if (!bundle) return tl::make_unexpected("certificate: " + bundle.error());
    texts[certificate.file] = std::move(bundle->text);
  }
  for (const auto& [file, text] : texts) {
    if (read_text(file) != text) {
      if (auto written = write_certificate(file, text); !written) return written;
    }
    m_loaded[file] = text;
  }
  return {};
}

tl::expected<void, std::string> LoadBalancer::start_access_logs() {
  m_access_logs.clear();
  for (const auto& log : m_options.access_logs) {
    auto sink = std::make_unique<AccessLogSink>(m_loop, log.frontend, log.socket, log.file);
    if (auto started = sink->start(); !started) return started;
    m_access_logs.push_back(std::move(sink));
  }
  return {};
}

void LoadBalancer::watch_certificates() {
  for (auto* watch : m_watches) {
    uv_fs_poll_stop(watch);
    watch->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(watch), [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_poll_t*>(h); });
  }
  m_watches.clear();
  std::set<std::string> watched;
  for (const auto& certificate : m_options.certificates) {
    if (certificate.watch_interval_ms == 0) continue;
    for (const std::string& path : {certificate.cert, certificate.key}) {
      if (path.empty() || !watched.insert(path).second) continue;
      auto* watch = new uv_fs_poll_t;
      uv_fs_poll_init(m_loop, watch);
      watch->data = this;
      // stat() follows symbolic links: a renewal that repoints one (certbot's
      // live/ directory) is seen as a change too.
      uv_fs_poll_start(
          watch,
          [](uv_fs_poll_t* handle, int, const uv_stat_t*, const uv_stat_t*) {
            auto* self = static_cast<LoadBalancer*>(handle->data);
            if (self != nullptr && !self->m_stopping) self->refresh_certificates();
          },
          path.c_str(), certificate.watch_interval_ms);
      m_watches.push_back(watch);
    }
  }
}

void LoadBalancer::refresh_certificates() {
  if (!m_client || m_stopping) return;
  for (const auto& certificate : m_options.certificates) {
    if (m_pushing[certificate.file]) continue;
    auto bundle = load_pem_bundle(certificate.cert, certificate.key);
    if (!bundle) {
      // certbot replaces the certificate and the key one after the other: a
      // mismatch may last until the second file is in place.
      spdlog::warn("certificate {} not loaded: {}; HAProxy keeps the one it has", certificate.file, bundle.error());
      continue;
    }
    const auto loaded = m_loaded.find(certificate.file);
    if (loaded != m_loaded.end() && loaded->second == bundle->text) continue;
    // On disk first: an HAProxy restart or reload loads the new one as well.
    if (auto written = write_certificate(certificate.file, bundle->text); !written) {
      spdlog::error("certificate {}: {}", certificate.file, written.error());
      continue;
    }
    push_certificate(certificate.file, bundle->text, bundle->serial);
  }
}

void LoadBalancer::push_certificate(const std::string& file, const std::string& text, const std::string& serial) {
  m_pushing[file] = true;
  m_client->send_with_payload("set ssl cert " + file + " <<", text, [this, file, text, serial](RuntimeClient::Answer set) {
    if (!set || set->find("Transaction") == std::string::npos) {
      m_pushing[file] = false;
      spdlog::error("certificate {}: set ssl cert failed: {}", file,
                    set ? *set : std::string(to_string(set.error().kind)) + ": " + set.error().detail);
      return;
    }
    m_client->send("commit ssl cert " + file, [this, file, text, serial](RuntimeClient::Answer commit) {
      m_pushing[file] = false;
      if (!commit || commit->find("Success") == std::string::npos) {
        spdlog::error("certificate {}: commit ssl cert failed: {}", file,
                      commit ? *commit : std::string(to_string(commit.error().kind)) + ": " + commit.error().detail);
        m_client->send("abort ssl cert " + file, [](const RuntimeClient::Answer&) {});
        return;
      }
      m_loaded[file] = text;
      spdlog::info("certificate {} (serial {}) loaded into HAProxy without a reload", file, serial);
      // The source may have changed again while this one was on its way.
      refresh_certificates();
    });
  });
}

tl::expected<std::vector<std::string>, std::string> LoadBalancer::apply(std::vector<BackendSpec> backends,
                                                                        std::vector<FrontendSpec> frontends,
                                                                        std::vector<Options::Certificate> certificates,
                                                                        std::vector<Options::AccessLog> access_logs) {
  std::vector<std::string> applied;
  if (!m_options.embedded || !m_supervisor) return applied;
  ConfigSpec spec = m_spec;
  spec.frontends = std::move(frontends);
  for (auto& running : spec.backends) {
    for (const auto& fresh : backends) {
      if (fresh.name != running.name) continue;
      running.timeout_server_ms = fresh.timeout_server_ms;
      running.timeout_connect_ms = fresh.timeout_connect_ms;
      running.timeout_queue_ms = fresh.timeout_queue_ms;
    }
  }
  auto text = render_config(spec);
  if (!text) return tl::make_unexpected("load_balancer: " + text.error());
  const std::string digest = m_options.digest(*text);
  const bool reload = digest != m_digest;

  // Certificates: all checked and written before HAProxy may read them.
  const auto previous_certificates = m_options.certificates;
  const auto previous_loaded = m_loaded;
  m_options.certificates = std::move(certificates);
  if (auto installed = install_certificates(); !installed) {
    m_options.certificates = previous_certificates;
    m_loaded = previous_loaded;
    return tl::make_unexpected(installed.error());
  }
  // Without a reload HAProxy keeps what it had: refresh_certificates() pushes
  // what differs. A reload reads the files just written.
  if (!reload) m_loaded = previous_loaded;
  watch_certificates();

  const bool same_logs = [&] {
    if (access_logs.size() != m_options.access_logs.size()) return false;
    for (std::size_t i = 0; i < access_logs.size(); ++i) {
      const auto& a = access_logs[i];
      const auto& b = m_options.access_logs[i];
      if (a.frontend != b.frontend || a.socket != b.socket || a.file != b.file) return false;
    }
    return true;
  }();
  if (same_logs) {
    for (auto& sink : m_access_logs) {
      if (auto reopened = sink->reopen(); !reopened) spdlog::error("{}", reopened.error());
    }
    if (!m_access_logs.empty()) applied.emplace_back("access log files reopened");
  } else {
    m_options.access_logs = std::move(access_logs);
    if (auto started = start_access_logs(); !started) spdlog::error("{}", started.error());
    applied.emplace_back("access logs");
  }

  if (reload) {
    m_spec = std::move(spec);
    m_digest = digest;
    applied.emplace_back("HAProxy configuration (frontends, TLS, time-outs): seamless reload");
    if (m_fleet_restored && m_driver) {
      reload_with_membership();
    } else {
      m_reload_pending = true;
    }
  } else {
    refresh_certificates();
  }
  return applied;
}

tl::expected<void, std::string> LoadBalancer::start() {
  if (m_options.embedded) {
    if (auto installed = install_certificates(); !installed) {
      return tl::make_unexpected("load_balancer: " + installed.error());
    }
    if (auto logs = start_access_logs(); !logs) return tl::make_unexpected("load_balancer: " + logs.error());
    ConfigSpec spec;
    spec.stats_socket = m_options.socket_path;
    spec.pid_file = m_options.pid_file;
    spec.backends = m_options.backends;
    spec.frontends = m_options.frontends;
    auto text = render_config(spec);
    if (!text) return tl::make_unexpected("load_balancer: " + text.error());
    m_spec = spec;
    m_digest = m_options.digest(*text);
    const std::filesystem::path path = m_options.config_path;
    // An HAProxy left serving by the previous coordinator is adopted: it
    // keeps serving. When it runs an older configuration it is reloaded with
    // this one once the fleet is restored (reload_with_membership).
    const int running = running_haproxy(spec.pid_file, path);
    const bool same_config = config_digest(read_text(path)) == m_digest;
    if (running == 0) write_haproxy_config(path, m_digest, *text);
    Supervisor::Options options;
    options.haproxy_binary = m_options.haproxy_binary;
    options.config_path = path.string();
    Supervisor::Events events;
    events.on_started = [this](int pid) {
      spdlog::info("HAProxy started (pid {})", pid);
      // A fresh HAProxy has every slot in maintenance: restore membership as
      // soon as its socket is up instead of waiting for the periodic reconcile
      // (at start-up, fleet_restored() does it once the fleet is known).
      if (m_fleet_restored) schedule_reconcile(200);
    };
    events.on_exited = [this](std::int64_t status, int signal) {
      if (m_stopping) {
        spdlog::info("HAProxy stopped (status {}, signal {})", status, signal);
      } else {
        spdlog::warn("HAProxy exited (status {}, signal {}); restarting", status, signal);
      }
    };
    events.on_spawn_error = [](const std::string& error) { spdlog::error("HAProxy: {}", error); };
    m_supervisor = std::make_unique<Supervisor>(m_loop, options, events);
    if (running > 0) {
      if (auto adopted = m_supervisor->adopt(running); adopted) {
        spdlog::info("adopted the running HAProxy (pid {}): it keeps serving{}", running,
                     same_config ? ""
                                 : "; it runs an older configuration and is reloaded once the "
                                   "fleet is restored");
        m_adopted = true;
        m_reload_pending = !same_config;
        // What certificates the running HAProxy holds is unknown: each is
        // loaded into it once the fleet is restored (refresh_certificates).
        if (same_config) m_loaded.clear();
      } else {
        spdlog::warn("{}; starting a new HAProxy", adopted.error());
        stop_haproxy(running);
        write_haproxy_config(path, m_digest, *text);
      }
    }
    if (!m_adopted) {
      if (auto started = m_supervisor->start(); !started) {
        return tl::make_unexpected("HAProxy: " + started.error());
      }
    }
  }
  RuntimeClient::Options client;
  client.endpoint = m_options.socket_path;
  m_client = std::make_unique<RuntimeClient>(m_loop, client);
  Driver::Options driver;
  for (const auto& backend : m_options.backends) {
    driver.backends.push_back({backend.name, backend.slot_prefix, backend.slot_count});
  }
  m_driver = std::make_unique<Driver>(m_loop, *m_client, driver);
  if (m_options.embedded) watch_certificates();
  // The reconciles start once the fleet is restored (fleet_restored).
  return {};
}

void LoadBalancer::schedule_reconcile(std::uint64_t delay_ms) {
  auto* timer = new uv_timer_t;
  uv_timer_init(m_loop, timer);
  timer->data = this;
  uv_timer_start(
      timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<LoadBalancer*>(t->data);
        if (self->m_driver && !self->m_stopping) {
          self->m_driver->reconcile([](const tl::expected<ReconcileResult, DriverError>& result) {
            if (result) {
              for (const auto& note : result->notes) spdlog::info("LB reconcile: {}", note);
            }
          });
        }
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      },
      delay_ms, 0);
}

void LoadBalancer::fleet_restored() {
  m_fleet_restored = true;
  if (!m_driver) return;
  if (!m_reload_pending) refresh_certificates();
  if (m_reload_pending) {
    m_reload_pending = false;
    reload_with_membership();
    return;
  }
  // A freshly started HAProxy needs a moment before its socket answers; an
  // adopted one is checked at once.
  start_reconciles(m_adopted ? 0 : 200);
}

void LoadBalancer::start_reconciles(std::uint64_t first_delay_ms) {
  schedule_reconcile(first_delay_ms);
  // After an HAProxy restart every slot is back in maintenance; the periodic
  // reconcile puts wanted members back.
  m_driver->reconcile_every(m_options.reconcile_interval_ms,
                            [](const tl::expected<ReconcileResult, DriverError>& result) {
                              if (!result) {
                                spdlog::debug("LB reconcile failed: {}", result.error().detail);
                                return;
                              }
                              for (const auto& note : result->notes) {
                                spdlog::info("LB reconcile: {}", note);
                              }
                            });
}

// The adopted HAProxy runs an older configuration. A reload (SIGUSR2 to its
// master) keeps the listening sockets, so no connection is refused, and the
// new worker starts from a configuration that declares the current members in
// their slots — so it serves them from its first request. HAProxy's
// server-state-file cannot do this: 2.6 does not restore run-time addresses.
void LoadBalancer::reload_with_membership() {
  m_client->send("show info", [this](RuntimeClient::Answer info) {
    if (m_stopping) return;
    const std::string old_worker = info ? info_field(*info, "Pid") : "";
    ConfigSpec spec = m_spec;
    std::size_t carried = 0;
    for (auto& backend : spec.backends) {
      const auto& wanted = m_driver->wanted(backend.name);
      for (const auto& [id, slot] : m_driver->assignment(backend.name)) {
        auto member = wanted.find(id);
        if (member == wanted.end() || slot > backend.slot_count) continue;
        backend.slots_in_use.push_back(SlotSpec{slot, member->second.address, member->second.port,
                                                member->second.in_rotation});
        ++carried;
      }
    }
    auto text = render_config(spec);
    tl::expected<void, std::string> reloaded =
        tl::make_unexpected(text ? std::string() : text.error());
    if (text) {
      write_haproxy_config(m_options.config_path, m_digest, *text);
      reloaded = m_supervisor->reload();
    }
    if (!reloaded) {
      // Fail static: the old configuration keeps serving what it serves.
      spdlog::error(
          "HAProxy reload with the new configuration failed: {}; the old configuration keeps "
          "serving",
          reloaded.error());
      start_reconciles(0);
      return;
    }
    spdlog::info("HAProxy (pid {}) reloaded with the new configuration; {} members carried over",
                 m_supervisor->pid(), carried);
    m_reloading = true;
    ++m_reloads;
    await_new_worker(old_worker, 100);
  });
}

// The runtime API connection still talks to the old worker, which finishes
// its connections and goes: reconnect until a new worker answers (every
// 50 ms, at most 5 s), then reconcile whatever changed meanwhile.
void LoadBalancer::await_new_worker(std::string old_worker, int polls_left) {
  struct Ctx {
    LoadBalancer* self;
    std::string old_worker;
    int polls_left;
  };
  auto* timer = new uv_timer_t;
  uv_timer_init(m_loop, timer);
  timer->data = new Ctx{this, std::move(old_worker), polls_left};
  uv_timer_start(
      timer,
      [](uv_timer_t* t) {
        std::unique_ptr<Ctx> ctx(static_cast<Ctx*>(t->data));
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        LoadBalancer* self = ctx->self;
        if (self->m_stopping) return;
        self->m_client->reset();
        self->m_client->send("show info", [self, old = ctx->old_worker,
                                           left = ctx->polls_left](RuntimeClient::Answer info) {
          if (self->m_stopping) return;
          const std::string worker = info ? info_field(*info, "Pid") : "";
          if ((!worker.empty() && worker != old) || left <= 1) {
            if (worker.empty() || worker == old) {
              spdlog::warn("no new HAProxy worker answered after the reload");
            }
            self->m_reloading = false;
            self->start_reconciles(0);
            return;
          }
          self->await_new_worker(old, left - 1);
        });
      },
      50, 0);
}

void LoadBalancer::stop(std::function<void()> done) {
  m_stopping = true;
  for (auto* watch : m_watches) uv_fs_poll_stop(watch);
  if (m_driver) m_driver->reconcile_every(0);
  if (m_supervisor && m_options.keep_running_on_stop) {
    spdlog::info("leaving HAProxy (pid {}) serving for the next coordinator", m_supervisor->pid());
    m_supervisor->release();
    done();
  } else if (m_supervisor) {
    m_supervisor->stop(std::move(done));
  } else {
    done();
  }
}

void LoadBalancer::sample_traffic(
    std::function<void(tl::expected<std::vector<ServerTraffic>, std::string>)> done) {
  using Result = tl::expected<std::vector<ServerTraffic>, std::string>;
  if (!m_client || !m_driver || m_options.backends.empty()) {
    return answer_later<Result>(m_loop, std::move(done), std::vector<ServerTraffic>{});
  }
  if (m_stopping) {
    return answer_later<Result>(m_loop, std::move(done),
                                tl::make_unexpected(std::string("the load balancer is stopped")));
  }
  if (m_options.embedded && !m_supervisor->running()) {
    return answer_later<Result>(m_loop, std::move(done),
                                tl::make_unexpected(std::string("HAProxy is not running")));
  }
  if (m_reloading) {
    return answer_later<Result>(
        m_loop, std::move(done),
        tl::make_unexpected(
            std::string("HAProxy is reloading: the new worker does not answer yet")));
  }
  // The answer comes through m_client, which the LoadBalancer owns: the
  // callback never runs after the LoadBalancer is gone.
  m_client->send("show stat -1 4 -1", [this, reloads = m_reloads,
                                       done = std::move(done)](RuntimeClient::Answer answer) {
    if (m_reloading || m_reloads != reloads) {
      return done(tl::make_unexpected(std::string(
          "HAProxy reloaded during the sample: the figures may be the old worker's or the new "
          "one's")));
    }
    if (!answer) {
      return done(tl::make_unexpected("show stat: " + std::string(to_string(answer.error().kind)) +
                                      ": " + answer.error().detail));
    }
    auto rows = parse_show_stat(*answer);
    if (!rows) return done(tl::make_unexpected("show stat: " + rows.error()));
    std::vector<BackendMembers> members;
    members.reserve(m_options.backends.size());
    for (const BackendSpec& backend : m_options.backends) {
      members.push_back(
          BackendMembers{backend.name, backend.slot_prefix, m_driver->assignment(backend.name)});
    }
    done(member_traffic(*rows, members));
  });
}

}  // namespace tide::haproxy
