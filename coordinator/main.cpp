// tide-coordinator: the fleet control loop (DESIGN.md, "Coordinator").
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <uv.h>

#include "common/files/private_files.hpp"
#include "common/logging/logging.hpp"
#include "common/systemd/sd_notify.hpp"
#include "coordinator/io/server/config.hpp"
#include "coordinator/io/server/server.hpp"

namespace {

std::filesystem::path self_dir(const char* argv0) {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) path = std::filesystem::absolute(argv0);
  return path.parent_path();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tide-coordinator — the tide fleet control loop"};
  std::string config_path;
  bool check_only = false;
  std::string log_level;
  app.add_option("-c,--config", config_path, "YAML configuration file (packaging/coordinator.yaml.example)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_flag_callback("--version", [] {
    std::cout << "tide-coordinator " << TIDE_VERSION << '\n';
    std::exit(0);
  }, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  auto config = config_path.empty() ? tide::coordinator::parse_config("", "(defaults)")
                                    : tide::coordinator::load_config(config_path);
  if (!config) {
    std::cerr << "tide-coordinator: " << config.error().message << '\n';
    return 2;
  }
  if (!log_level.empty()) config->log_level = log_level;
  if (auto valid = tide::coordinator::validate(*config); !valid) {
    std::cerr << "tide-coordinator: " << valid.error().message << '\n';
    return 2;
  }
  if (check_only) {
    std::cout << config->source << ": OK\n";
    return 0;
  }
  // stderr, with a time and level on every line (priority prefixes under
  // journald): docs/packaging.md, "Logs".
  tide::logging::setup(spdlog::level::from_str(config->log_level));

  // The state directory holds the database and the CURVE secret key: it is
  // created 0700 whatever the umask, and an existing one is tightened to at
  // most 0750 (packaging makes it 0750 tide:tide).
  if (auto state_dir = tide::files::ensure_private_dir(config->state_dir); !state_dir) {
    spdlog::critical("cannot start: state_dir: {}", state_dir.error());
    return 1;
  }

  uv_loop_t* loop = uv_default_loop();
  tide::coordinator::Server server(loop, *config, self_dir(argv[0]));
  int exit_code = 0;
  server.start([&](tl::expected<void, std::string> started) {
    if (!started) {
      spdlog::critical("cannot start: {}", started.error());
      exit_code = 1;
      server.stop([] {});
      uv_stop(uv_default_loop());
      return;
    }
    spdlog::info("tide-coordinator {} ready", TIDE_VERSION);
    // Type=notify: systemd counts the unit started once the admin API
    // listens, so `systemctl start` returns when tidectl can connect.
    if (auto sent = tide::systemd::notify("READY=1"); !sent) spdlog::warn("{}", sent.error());
  });

  // SIGINT/SIGTERM: stop cleanly (instances keep running; a restart re-adopts them).
  uv_signal_t sigint, sigterm;
  for (auto* handle : {&sigint, &sigterm}) {
    uv_signal_init(loop, handle);
    handle->data = &server;
  }
  const auto on_signal = [](uv_signal_t* handle, int signum) {
    spdlog::info("stopping (signal {})", signum);
    (void)tide::systemd::notify("STOPPING=1");
    auto* srv = static_cast<tide::coordinator::Server*>(handle->data);
    srv->stop([loop = handle->loop] { uv_stop(loop); });
  };
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);

  // SIGHUP (systemd's ExecReload): re-read the configuration file and apply
  // what can be applied while running — the load balancer's frontends, TLS
  // certificates, time-outs and access logs; the rest is logged as needing
  // a restart. A file with an error changes nothing.
  struct Reload {
    tide::coordinator::Server* server;
    std::string config_path;
    std::string log_level;  // --log-level, which outranks the file
  } reload{&server, config_path, log_level};
  uv_signal_t sighup;
  uv_signal_init(loop, &sighup);
  sighup.data = &reload;
  uv_signal_start(&sighup, [](uv_signal_t* handle, int) {
    const auto* r = static_cast<const Reload*>(handle->data);
    if (r->config_path.empty()) {
      spdlog::warn("SIGHUP: started without --config, nothing to re-read");
      return;
    }
    spdlog::info("SIGHUP: re-reading {}", r->config_path);
    auto fresh = tide::coordinator::load_config(r->config_path);
    if (!fresh) {
      spdlog::error("SIGHUP: {}; the running configuration stays", fresh.error().message);
      return;
    }
    if (!r->log_level.empty()) fresh->log_level = r->log_level;
    r->server->reload(*fresh);
  }, SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);

  uv_run(loop, UV_RUN_DEFAULT);
  if (exit_code == 0) spdlog::info("stopped");
  return exit_code;
}
