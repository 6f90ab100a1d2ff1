#include "coordinator/io/provider/local_provider.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/files/private_files.hpp"
#include "coordinator/io/provider/exit_report.hpp"
#include "coordinator/io/provider/process_table.hpp"
#include "coordinator/io/provider/uv_work.hpp"

namespace tide::provider {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The session leader of every instance. It starts the agent (environment
// only, nothing inherited but PATH) and the application, records their pids
// in ./pids (atomically, for the provider and for re-adoption after a
// coordinator crash), and lives as long as the application does. When the
// application exits it writes its status to ./app.exit (the provider reports
// it; the file's mtime dates the exit) and stops the agent, so the instance is
// gone as a whole. Instances share the host, so each agent reports the CPU
// and memory of its own session (the instance), not the host's.
constexpr const char* kLauncherScript = R"sh(
agent_pid=0
if [ -n "$_TIDE_AGENT" ]; then
  mkdir -m 0700 -p agent-state
  env -i PATH="$PATH" \
    TIDE_COORDINATOR_ENDPOINT="$_TIDE_A_ENDPOINT" \
    TIDE_COORDINATOR_PUBLIC_KEY="$_TIDE_A_PUBKEY" \
    TIDE_INSTANCE_ID="$TIDE_INSTANCE_ID" \
    TIDE_ENROLLMENT_TOKEN="$_TIDE_A_TOKEN" \
    TIDE_GROUP="$_TIDE_A_GROUP" \
    TIDE_SERVICE_ADDRESS="$TIDE_INSTANCE_ADDRESS" \
    TIDE_SERVICE_PORT="$TIDE_INSTANCE_PORT" \
    TIDE_READINESS_HTTP="http://$TIDE_INSTANCE_ADDRESS:$TIDE_INSTANCE_PORT$_TIDE_A_READY" \
    TIDE_READINESS_PERIOD_MS="$_TIDE_A_READY_PERIOD" \
    TIDE_STATE_DIR="$PWD/agent-state" \
    TIDE_LOG_LEVEL="$_TIDE_A_LOG" \
    TIDE_METRICS_SCOPE=session \
    "$_TIDE_AGENT" >>agent.log 2>&1 </dev/null &
  agent_pid=$!
fi
app_command=$_TIDE_APP_COMMAND
unset _TIDE_APP_COMMAND _TIDE_AGENT _TIDE_A_ENDPOINT _TIDE_A_PUBKEY _TIDE_A_TOKEN _TIDE_A_GROUP _TIDE_A_READY _TIDE_A_READY_PERIOD _TIDE_A_LOG
/bin/sh -c "$app_command" >>app.log 2>&1 </dev/null &
app_pid=$!
printf '%s %s %s\n' "$$" "$app_pid" "$agent_pid" >pids.tmp && mv -f pids.tmp pids
wait "$app_pid"
status=$?
printf '%s\n' "$status" >app.exit
if [ "$agent_pid" != 0 ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid"; fi
exit "$status"
)sh";

constexpr int kRecordVersion = 1;

struct ProcessRef {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;
};

// What survives a coordinator crash about one instance.
struct Record {
  std::string provider_id;
  std::string instance_id;
  std::string group;
  std::string idempotency_key;
  std::string address;
  std::uint16_t port = 0;
  bool launching = true;  // written before the spawn; false once pids are known
  pid_t pgid = 0;
  ProcessRef leader;
  ProcessRef app;
  ProcessRef agent;
  std::int64_t started_at_ms = 0;
};

json to_json(const ProcessRef& p) { return json{{"pid", p.pid}, {"start_time_ticks", p.start_ticks}}; }

ProcessRef process_from_json(const json& j) {
  return ProcessRef{j.at("pid").get<pid_t>(), j.at("start_time_ticks").get<std::uint64_t>()};
}

json to_json(const Record& r) {
  return json{{"version", kRecordVersion},
              {"provider_id", r.provider_id},
              {"instance_id", r.instance_id},
              {"group", r.group},
              {"idempotency_key", r.idempotency_key},
              {"address", r.address},
              {"port", r.port},
              {"phase", r.launching ? "launching" : "running"},
              {"pgid", r.pgid},
              {"leader", to_json(r.leader)},
              {"app", to_json(r.app)},
              {"agent", to_json(r.agent)},
              {"started_at_ms", r.started_at_ms}};
}

Record record_from_json(const json& j) {
  if (j.at("version").get<int>() != kRecordVersion) {
    throw std::runtime_error("unsupported record version " + j.at("version").dump());
  }
  Record r;
  r.provider_id = j.at("provider_id").get<std::string>();
  r.instance_id = j.at("instance_id").get<std::string>();
  r.group = j.at("group").get<std::string>();
  r.idempotency_key = j.at("idempotency_key").get<std::string>();
  r.address = j.at("address").get<std::string>();
  r.port = j.at("port").get<std::uint16_t>();
  const auto phase = j.at("phase").get<std::string>();
  if (phase != "launching" && phase != "running") throw std::runtime_error("bad phase " + phase);
  r.launching = phase == "launching";
  r.pgid = j.at("pgid").get<pid_t>();
  r.leader = process_from_json(j.at("leader"));
  r.app = process_from_json(j.at("app"));
  r.agent = process_from_json(j.at("agent"));
  r.started_at_ms = j.at("started_at_ms").get<std::int64_t>();
  return r;
}

struct Paths {
  fs::path records;
  fs::path instances;
  [[nodiscard]] fs::path record(std::string_view id) const { return records / (std::string(id) + ".json"); }
  [[nodiscard]] fs::path instance(std::string_view id) const { return instances / std::string(id); }
};

// Writes via a temporary file and rename, so a crash leaves the old or the
// new record, never half of one.
void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, files::kPrivateFile);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  // open() applied the umask, and a stale temporary keeps its old mode.
  ::fchmod(fd, files::kPrivateFile);
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw std::runtime_error("cannot write " + tmp.string() + ": " + why);
    }
    off += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  fs::rename(tmp, path);
}

void write_record(const Paths& paths, const Record& r) {
  write_atomically(paths.record(r.provider_id), to_json(r).dump(2) + "\n");
}

std::optional<Record> read_record_file(const fs::path& path, std::string* error) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return record_from_json(json::parse(in));
  } catch (const std::exception& e) {
    if (error != nullptr) *error = path.string() + ": " + e.what();
    return std::nullopt;
  }
}

std::string read_small_file(const fs::path& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const std::size_t start = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string text(size - start, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

// A file's modification time in Unix epoch milliseconds, if it exists.
std::optional<std::int64_t> mtime_ms(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

// The launcher's app.exit: the application's status and a newline. Missing
// or incomplete (being written) reads as nullopt.
std::optional<int> read_exit_status(const fs::path& path) {
  const std::string text = read_small_file(path, 16);
  int status = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
  if (ec != std::errc{} || end == text.data() || end == text.data() + text.size() || *end != '\n' ||
      status < 0 || status > 255) {
    return std::nullopt;
  }
  return status;
}

// The launcher's "leader app agent" pid line, with start times looked up now.
std::optional<std::array<ProcessRef, 3>> read_pids(const fs::path& dir) {
  std::ifstream in(dir / "pids");
  long leader = 0;
  long app = 0;
  long agent = 0;
  if (!(in >> leader >> app >> agent)) return std::nullopt;
  std::array<ProcessRef, 3> refs{};
  const std::array<long, 3> pids{leader, app, agent};
  for (std::size_t i = 0; i < 3; ++i) {
    refs[i].pid = static_cast<pid_t>(pids[i]);
    if (pids[i] > 0) {
      if (const auto st = read_proc_stat(refs[i].pid)) refs[i].start_ticks = st->start_time_ticks;
    }
  }
  return refs;
}

bool ref_alive(const ProcessRef& p) { return p.pid > 0 && process_alive(p.pid, p.start_ticks); }

std::int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool record_alive(const Record& r) {
  if (r.launching) return false;
  if (ref_alive(r.leader) || ref_alive(r.app) || ref_alive(r.agent)) return true;
  // The recorded processes are gone, but something they started may remain.
  return !live_group_members(r.pgid, r.leader.start_ticks).empty();
}

// Whether the environment of pid carries TIDE_INSTANCE_ID=<id>: the check that
// a pid read back from a pids file after a crash is still our launcher.
bool environ_has_instance(pid_t pid, const std::string& instance_id) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!in) return false;
  std::string entry;
  const std::string wanted = "TIDE_INSTANCE_ID=" + instance_id;
  while (std::getline(in, entry, '\0')) {
    if (entry == wanted) return true;
  }
  return false;
}

// Files the launcher and the provider keep in an instance's directory.
constexpr const char* kAppLog = "app.log";
constexpr const char* kExitFile = "app.exit";          // written by the launcher
constexpr const char* kReportedMark = "exit-reported";  // the exit handler was called

// What is known about an application that exited.
struct AppExitFacts {
  int exit_status = -1;         // as the launcher's shell saw it; -1 unknown
  std::int64_t uptime_ms = 0;
  std::string tail;             // output_tail() of app.log
  [[nodiscard]] std::string message() const { return describe_app_exit(exit_status, uptime_ms, tail); }
};

// Gathers what the launcher left about an exited application. Returns nullopt
// while its status is still to come (app.exit not yet written and the launcher
// alive) if wait_for_launcher is set. Small bounded file reads only.
std::optional<AppExitFacts> collect_exit(const fs::path& dir, const Record& r, bool wait_for_launcher) {
  const auto status = read_exit_status(dir / kExitFile);
  if (!status && wait_for_launcher && ref_alive(r.leader)) return std::nullopt;
  AppExitFacts facts;
  facts.exit_status = status.value_or(-1);
  // The launcher writes ./pids just after starting the application and
  // app.exit just after it exits: their mtimes bound its life on one clock.
  const std::int64_t started = mtime_ms(dir / "pids").value_or(r.started_at_ms);
  const std::int64_t ended = (status ? mtime_ms(dir / kExitFile) : std::nullopt).value_or(system_clock_ms());
  facts.uptime_ms = std::max<std::int64_t>(0, ended - started);
  std::error_code ec;
  const auto size = fs::file_size(dir / kAppLog, ec);
  facts.tail = output_tail(read_small_file(dir / kAppLog, kOutputTailBytes),
                           !ec && size > kOutputTailBytes);
  return facts;
}

// SIGKILLs whatever is left of an instance whose application is gone (an agent
// that ignored SIGTERM, the launcher waiting for it, children the application
// left behind), so that forgetting the instance orphans nothing.
void kill_leftovers(const Record& r) {
  if (!live_group_members(r.pgid, r.leader.start_ticks).empty()) ::kill(-r.pgid, SIGKILL);
  if (ref_alive(r.agent)) ::kill(r.agent.pid, SIGKILL);
  if (ref_alive(r.leader)) ::kill(r.leader.pid, SIGKILL);
}

ProviderInstance to_instance(const Record& r, InstanceState state, std::string message = {}) {
  return ProviderInstance{r.provider_id, r.instance_id, r.group, r.idempotency_key, r.address,
                          r.port,        state,         r.started_at_ms, std::move(message)};
}

// Probes whether address:port can be bound (nothing else listens there).
// Returns 0, or the errno of bind().
int probe_bind(const std::string& address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return EINVAL;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int result = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) result = errno;
  ::close(fd);
  return result;
}

std::string validate(const LaunchRequest& r) {
  if (auto e = check_identifier("instance_id", r.instance_id); !e.empty()) return e;
  if (auto e = check_identifier("idempotency_key", r.idempotency_key); !e.empty()) return e;
  if (r.launch.command.empty()) return "launch configuration has an empty command";
  if (r.launch.port == 0) return "launch configuration has no port (1..65535)";
  for (const auto& [name, value] : r.launch.env) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      return "environment variable name '" + name + "' is invalid";
    }
    if (value.find('\0') != std::string::npos) return "environment variable " + name + " holds a NUL byte";
  }
  for (const auto& [name, path] : r.launch.env_files) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      return "env_files name '" + name + "' is invalid";
    }
    if (path.empty() || path.front() != '/') return "env_files." + name + ": '" + path + "' is not an absolute path";
  }
  if (!r.agent.agent_path.empty()) {
    if (r.agent.agent_path.front() != '/') return "agent path '" + r.agent.agent_path + "' is not absolute";
    if (!r.agent.readiness_path.empty() && r.agent.readiness_path.front() != '/') {
      return "readiness path '" + r.agent.readiness_path + "' must start with '/'";
    }
  }
  return {};
}

}  // namespace

// ---- shared state -----------------------------------------------------------

// A launcher we spawned: watched so that it is reaped when it exits.
struct LocalChild {
  uv_process_t handle{};
  LocalProvider::State* state = nullptr;
};

namespace {

// A pidfd on an instance's application (the launcher's child, not ours),
// polled on the loop: it turns readable when the application exits.
struct ExitPoll {
  uv_poll_t handle{};
  int fd = -1;
  std::weak_ptr<LocalProvider::State> state;
  std::string provider_id;
  std::uint64_t token = 0;
  Record record;
};

// One instance whose application is being watched for an unasked exit, from
// opening its pidfd until the exit handler has been called. A token tells a
// watch from a later one of the same id, so that the results of work begun
// for a cancelled watch are dropped.
struct ExitWatch {
  std::uint64_t token = 0;
  ExitPoll* poll = nullptr;  // set while the pidfd is polled
};

}  // namespace

struct LocalProvider::State {
  uv_loop_t* loop = nullptr;
  LocalProviderOptions options;
  Paths paths;
  ProviderMetrics* metrics = nullptr;  // null once the provider is destroyed
  // Serialises record-file changes and address choice across pool workers.
  std::mutex records_mutex;
  std::map<std::string, std::vector<LaunchCallback>> launching;
  std::map<std::string, std::vector<TerminateCallback>> terminating;
  std::map<pid_t, LocalChild*> children;  // launchers we spawned and still watch
  ExitHandler* exit_handler = nullptr;    // the provider's; null once it is destroyed
  std::map<std::string, ExitWatch> watches;
  std::uint64_t last_watch_token = 0;

  [[nodiscard]] bool alive() const { return metrics != nullptr; }

  void count_failure(OperationCounters ProviderMetrics::*op) {
    if (metrics != nullptr) ++(metrics->*op).failures;
  }

  void finish_launch(const std::string& key, const tl::expected<LaunchResult, ProviderError>& r) {
    auto node = launching.extract(key);
    if (!alive() || node.empty()) return;
    if (!r) count_failure(&ProviderMetrics::launch);
    for (auto& cb : node.mapped()) cb(r);
  }

  void finish_terminate(const std::string& id, const tl::expected<void, ProviderError>& r) {
    auto node = terminating.extract(id);
    if (!alive() || node.empty()) return;
    if (!r) count_failure(&ProviderMetrics::terminate);
    for (auto& cb : node.mapped()) cb(r);
  }

  std::set<std::string> busy_ids() const {
    std::set<std::string> ids;
    for (const auto& [k, v] : launching) ids.insert(k);
    return ids;
  }
};

namespace {

using StatePtr = std::shared_ptr<LocalProvider::State>;

// Inspects a record that is not being launched or terminated by this process:
// completes a launch interrupted by a crash, or reports the instance gone and
// drops its record. Runs on the pool with records_mutex held.
ProviderInstance inspect_record(const Paths& paths, Record r, std::uint32_t start_timeout_ms,
                                std::int64_t now_ms) {
  if (r.launching) {
    // Written before the spawn; the launcher may have started all the same.
    const auto pids = read_pids(paths.instance(r.provider_id));
    if (pids && ref_alive((*pids)[0]) && environ_has_instance((*pids)[0].pid, r.instance_id)) {
      r.leader = (*pids)[0];
      r.app = (*pids)[1];
      r.agent = (*pids)[2];
      r.pgid = r.leader.pid;
      r.launching = false;
      write_record(paths, r);
      return to_instance(r, InstanceState::Running);
    }
    if (!pids && now_ms - r.started_at_ms < static_cast<std::int64_t>(start_timeout_ms)) {
      return to_instance(r, InstanceState::Pending);
    }
    std::error_code ec;
    fs::remove(paths.record(r.provider_id), ec);
    return to_instance(r, InstanceState::Gone, "the launch did not complete");
  }
  // An instance lives as long as its application: the launcher and the agent
  // only serve it (the launcher stops the agent when the application exits).
  if (ref_alive(r.app)) return to_instance(r, InstanceState::Running);
  // The application has just exited and its launcher is about to note the
  // status: leave it a moment (killing it now would lose how the application
  // ended); the exit watch reports the instance, the next look finds it gone.
  std::error_code exists_ec;
  if (ref_alive(r.leader) && !fs::exists(paths.instance(r.provider_id) / kExitFile, exists_ec)) {
    return to_instance(r, InstanceState::Stopping, "its application exited; its launcher is finishing");
  }
  const auto facts = collect_exit(paths.instance(r.provider_id), r, false);
  kill_leftovers(r);
  std::error_code ec;
  fs::remove(paths.record(r.provider_id), ec);
  return to_instance(r, InstanceState::Gone, facts ? facts->message() : "its processes have exited");
}

std::vector<Record> load_records(const Paths& paths) {
  std::vector<Record> records;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(paths.records, ec)) {
    if (entry.path().extension() != ".json") continue;
    std::string error;
    if (auto r = read_record_file(entry.path(), &error)) {
      records.push_back(std::move(*r));
    } else if (!error.empty()) {
      // Kept aside rather than deleted: it may name processes still running.
      spdlog::warn("local provider: unreadable instance record {}", error);
      fs::rename(entry.path(), entry.path().string() + ".bad", ec);
    }
  }
  return records;
}

struct Prepared {
  std::optional<LaunchResult> existing;
  Record record;
  std::map<std::string, std::string> env_file_values;  // secrets: memory only, never in the record
};

Outcome<Prepared> prepare_launch(LocalProvider::State& s, const LaunchRequest& req,
                                 std::int64_t now_ms) {
  const std::lock_guard lock(s.records_mutex);
  const auto& o = s.options;
  if (!req.agent.agent_path.empty() && ::access(req.agent.agent_path.c_str(), X_OK) != 0) {
    return tl::unexpected(ProviderError{
        "agent '" + req.agent.agent_path + "' is not executable: " + std::strerror(errno), false});
  }
  std::set<std::string> used;
  for (auto& r : load_records(s.paths)) {
    if (r.provider_id == req.idempotency_key) {
      if (r.launching) {
        // An interrupted launch of this very key: adopt it if it started.
        auto seen = inspect_record(s.paths, r, 0, now_ms);
        if (seen.state == InstanceState::Running) {
          return Prepared{LaunchResult{seen.provider_id, seen.address, seen.port, true}, {}, {}};
        }
        continue;
      }
      if (ref_alive(r.app)) {
        return Prepared{LaunchResult{r.provider_id, r.address, r.port, true}, r, {}};
      }
      kill_leftovers(r);
      std::error_code ec;
      fs::remove(s.paths.record(r.provider_id), ec);
      continue;
    }
    used.insert(r.address);
  }
  std::string address;
  for (unsigned n = o.first_host; n <= o.last_host; ++n) {
    std::string candidate = o.address_prefix + std::to_string(n);
    if (used.count(candidate) != 0) continue;
    const int err = probe_bind(candidate, req.launch.port);
    if (err == 0) {
      address = std::move(candidate);
      break;
    }
    if (err != EADDRINUSE) {
      return tl::unexpected(ProviderError{"cannot bind " + candidate + ":" +
                                              std::to_string(req.launch.port) + ": " +
                                              std::strerror(err),
                                          false});
    }
  }
  if (address.empty()) {
    return tl::unexpected(ProviderError{"no free address in " + o.address_prefix +
                                            std::to_string(o.first_host) + ".." +
                                            std::to_string(o.last_host) + " for port " +
                                            std::to_string(req.launch.port),
                                        true});
  }
  // Read before anything is written, so an unreadable file leaves no trace.
  auto env_file_values = read_env_files(req.launch.env_files);
  if (!env_file_values) return tl::unexpected(env_file_values.error());
  Record r;
  r.provider_id = req.idempotency_key;
  r.instance_id = req.instance_id;
  r.group = req.group;
  r.idempotency_key = req.idempotency_key;
  r.address = address;
  r.port = req.launch.port;
  r.started_at_ms = now_ms;
  const fs::path dir = s.paths.instance(r.provider_id);
  // The launcher's environment holds the enrollment token and the agent's
  // state directory inside holds its key: the instance directory is 0700.
  if (auto made = files::ensure_private_dir(dir, files::kPrivateDir, files::kPrivateDir); !made) {
    return tl::unexpected(ProviderError{made.error(), true});
  }
  std::error_code ec;
  fs::remove(dir / "pids", ec);
  // A key launched again reuses the directory: what the last application
  // left there must not be read as news about this one.
  fs::remove(dir / kExitFile, ec);
  fs::remove(dir / kReportedMark, ec);
  fs::rename(dir / kAppLog, dir / (std::string(kAppLog) + ".1"), ec);
  write_record(s.paths, r);
  return Prepared{std::nullopt, r, std::move(*env_file_values)};
}

std::vector<std::string> launcher_env(const LocalProviderOptions& o, const LaunchRequest& req, const Record& r,
                                      const std::map<std::string, std::string>& env_file_values) {
  std::map<std::string, std::string> env;
  for (const auto& name : o.inherited_env) {
    if (const char* value = std::getenv(name.c_str())) env[name] = value;
  }
  if (env.count("PATH") == 0) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& [k, v] : req.launch.env) env[k] = v;
  for (const auto& [k, v] : env_file_values) env[k] = v;
  const std::string port = std::to_string(r.port);
  env["TIDE_INSTANCE_ID"] = req.instance_id;
  env["TIDE_INSTANCE_ADDRESS"] = r.address;
  env["TIDE_INSTANCE_PORT"] = port;
  env["HOST"] = r.address;
  env["PORT"] = port;
  env["_TIDE_APP_COMMAND"] = req.launch.command;
  env["_TIDE_AGENT"] = req.agent.agent_path;
  env["_TIDE_A_ENDPOINT"] = req.agent.coordinator_endpoint;
  env["_TIDE_A_PUBKEY"] = req.agent.coordinator_public_key;
  env["_TIDE_A_TOKEN"] = req.agent.enrollment_token;
  env["_TIDE_A_GROUP"] = req.group;
  env["_TIDE_A_READY"] = req.agent.readiness_path;
  // Empty leaves the agent's default.
  env["_TIDE_A_READY_PERIOD"] =
      req.agent.readiness_period_ms == 0 ? std::string() : std::to_string(req.agent.readiness_period_ms);
  env["_TIDE_A_LOG"] = req.agent.log_level;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// Kills what is left of a failed launch and drops its record (the instance
// directory stays, for its logs).
void abandon_launch(const StatePtr& s, const Record& r, pid_t leader) {
  run_in_pool<bool>(
      s->loop,
      [s, r, leader]() -> Outcome<bool> {
        const std::lock_guard lock(s->records_mutex);
        if (leader > 0) ::kill(-leader, SIGKILL);
        std::error_code ec;
        fs::remove(s->paths.record(r.provider_id), ec);
        return true;
      },
      [](Outcome<bool>) {});
}

// ---- exit watches -------------------------------------------------------------
//
// Every instance with a record (launched here, or adopted from the state dir)
// gets a pidfd on its application once an exit handler is set. When it turns
// readable and no terminate() has cancelled the watch, the launcher's app.exit
// and the end of app.log are read on the pool, the agent is sent SIGTERM, an
// "exit-reported" mark is left in the instance directory (so no later watch,
// in this process or after a restart, reports the exit again) and the handler
// is called on the loop.

// How long to wait for the launcher's app.exit after the application's pidfd
// turned readable: the launcher writes it as soon as it has reaped the
// application, so a few ms; the bound matters only for a stopped launcher.
constexpr std::uint64_t kExitStatusRetryMs = 5;
constexpr int kExitStatusAttempts = 200;

int open_pidfd(pid_t pid) {
  // glibc 2.36's <sys/pidfd.h> lacks extern "C"; the system call is the same.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
}

void close_poll(ExitPoll* poll) {
  uv_poll_stop(&poll->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), [](uv_handle_t* h) {
    auto* p = static_cast<ExitPoll*>(h->data);
    ::close(p->fd);
    delete p;
  });
}

bool watch_current(const LocalProvider::State& s, const std::string& id, std::uint64_t token) {
  const auto it = s.watches.find(id);
  return it != s.watches.end() && it->second.token == token;
}

void cancel_watch(LocalProvider::State& s, const std::string& id) {
  const auto it = s.watches.find(id);
  if (it == s.watches.end()) return;
  if (it->second.poll != nullptr) close_poll(it->second.poll);
  s.watches.erase(it);
}

void cancel_all_watches(LocalProvider::State& s) {
  for (auto& [id, watch] : s.watches) {
    if (watch.poll != nullptr) close_poll(watch.poll);
  }
  s.watches.clear();
}

struct Collected {
  bool app_alive = false;              // a spurious wake-up: nothing to report
  std::optional<AppExitFacts> facts;   // empty: app.exit is still to come
};

void deliver_exit(const StatePtr& s, const Record& r, const AppExitFacts& facts) {
  s->watches.erase(r.provider_id);
  if (s->exit_handler == nullptr || !*s->exit_handler) return;
  InstanceExit exit;
  exit.provider_id = r.provider_id;
  exit.instance_id = r.instance_id;
  exit.message = facts.message();
  exit.uptime_ms = facts.uptime_ms;
  exit.exit_status = facts.exit_status;
  exit.term_signal = signal_from_shell_status(facts.exit_status);
  exit.output_tail = facts.tail;
  spdlog::info("local provider: {} ({}): {}", r.provider_id, r.instance_id, exit.message);
  // A copy: the handler may replace itself through set_exit_handler.
  const ExitHandler handler = *s->exit_handler;
  handler(std::move(exit));
}

void report_exit(const StatePtr& s, Record r, std::uint64_t token, int attempt) {
  const bool wait_for_launcher = attempt < kExitStatusAttempts;
  run_in_pool<Collected>(
      s->loop,
      [s, r, wait_for_launcher]() -> Outcome<Collected> {
        Collected out;
        if (ref_alive(r.app)) {
          out.app_alive = true;
          return out;
        }
        const fs::path dir = s->paths.instance(r.provider_id);
        out.facts = collect_exit(dir, r, wait_for_launcher);
        if (!out.facts) return out;
        // The launcher stops the agent too, unless it is gone itself; an agent
        // beside a dead application must not go on reporting.
        if (ref_alive(r.agent)) ::kill(r.agent.pid, SIGTERM);
        const std::lock_guard lock(s->records_mutex);
        const int fd = ::open((dir / kReportedMark).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, files::kPrivateFile);
        if (fd >= 0) ::close(fd);
        return out;
      },
      [s, r, token, attempt](Outcome<Collected> out) {
        if (!s->alive() || !watch_current(*s, r.provider_id, token)) return;
        if (!out) {
          spdlog::warn("local provider: reading how {} exited: {}", r.provider_id, out.error().message);
          deliver_exit(s, r, AppExitFacts{});
          return;
        }
        if (out->app_alive) {
          spdlog::warn("local provider: {}: its application's pidfd woke up although it runs; "
                       "no longer watching it (list() still checks it)",
                       r.provider_id);
          s->watches.erase(r.provider_id);
          return;
        }
        if (!out->facts) {
          run_after(s->loop, kExitStatusRetryMs, [s, r, token, attempt] {
            if (s->alive() && watch_current(*s, r.provider_id, token)) report_exit(s, r, token, attempt + 1);
          });
          return;
        }
        deliver_exit(s, r, *out->facts);
      });
}

void on_exit_poll(uv_poll_t* handle, int status, int /*events*/) {
  auto* poll = static_cast<ExitPoll*>(handle->data);
  const StatePtr s = poll->state.lock();
  // cancel_watch() closes the poll, so a live poll always has its watch.
  if (!s || !s->alive() || !watch_current(*s, poll->provider_id, poll->token)) return;
  s->watches[poll->provider_id].poll = nullptr;
  const Record r = poll->record;
  const std::uint64_t token = poll->token;
  close_poll(poll);
  if (status < 0) {
    spdlog::warn("local provider: watching {}'s application failed: {}; list() still checks it",
                 r.provider_id, uv_strerror(status));
    s->watches.erase(r.provider_id);
    return;
  }
  report_exit(s, r, token, 0);
}

struct Opened {
  enum class Kind : std::uint8_t { Skip, Watch, Exited };
  Kind kind = Kind::Skip;
  int fd = -1;
  Record record;
  std::string problem;  // why it cannot be watched, for the log
};

// Starts watching the application of the instance recorded under id, if an
// exit handler is set and it is not already watched, launched or terminated.
void start_watch(const StatePtr& s, const std::string& id) {
  if (!s->alive() || s->exit_handler == nullptr || !*s->exit_handler) return;
  if (s->watches.count(id) != 0 || s->launching.count(id) != 0 || s->terminating.count(id) != 0) {
    return;
  }
  const std::uint64_t token = ++s->last_watch_token;
  s->watches[id] = ExitWatch{token, nullptr};
  run_in_pool<Opened>(
      s->loop,
      [s, id]() -> Outcome<Opened> {
        const std::lock_guard lock(s->records_mutex);
        Opened out;
        auto r = read_record_file(s->paths.record(id), nullptr);
        if (!r || r->launching || r->app.pid <= 0) return out;
        if (fs::exists(s->paths.instance(id) / kReportedMark)) return out;
        out.record = *r;
        const int fd = open_pidfd(r->app.pid);
        if (fd < 0 && errno != ESRCH) {
          out.problem = std::string("pidfd_open: ") + std::strerror(errno);
          return out;
        }
        // Opened first, checked second: when the pid still names our
        // application after the open, the pidfd refers to it.
        if (fd < 0 || !ref_alive(r->app)) {
          if (fd >= 0) ::close(fd);
          out.kind = Opened::Kind::Exited;
          return out;
        }
        out.kind = Opened::Kind::Watch;
        out.fd = fd;
        return out;
      },
      [s, id, token](Outcome<Opened> opened) {
        const bool current = s->alive() && watch_current(*s, id, token);
        if (!opened) {
          if (current) {
            spdlog::warn("local provider: cannot watch {}: {}", id, opened.error().message);
            s->watches.erase(id);
          }
          return;
        }
        if (!current) {
          if (opened->fd >= 0) ::close(opened->fd);
          return;
        }
        switch (opened->kind) {
          case Opened::Kind::Skip:
            if (!opened->problem.empty()) {
              spdlog::warn("local provider: cannot watch {}: {}; list() still checks it", id,
                           opened->problem);
            }
            s->watches.erase(id);
            return;
          case Opened::Kind::Exited:
            report_exit(s, opened->record, token, 0);
            return;
          case Opened::Kind::Watch:
            break;
        }
        auto* poll = new ExitPoll{};
        poll->fd = opened->fd;
        poll->state = s;
        poll->provider_id = id;
        poll->token = token;
        poll->record = opened->record;
        poll->handle.data = poll;
        if (const int rc = uv_poll_init(s->loop, &poll->handle, poll->fd); rc != 0) {
          spdlog::warn("local provider: cannot watch {}: uv_poll_init: {}", id, uv_strerror(rc));
          ::close(poll->fd);
          delete poll;
          s->watches.erase(id);
          return;
        }
        // Watches must not keep the coordinator's loop alive.
        uv_unref(reinterpret_cast<uv_handle_t*>(&poll->handle));
        uv_poll_start(&poll->handle, UV_READABLE, on_exit_poll);
        s->watches[id].poll = poll;
      });
}

void poll_launch(const StatePtr& s, Record r, std::uint64_t deadline) {
  run_in_pool<std::optional<Record>>(
      s->loop,
      [s, r]() mutable -> Outcome<std::optional<Record>> {
        const auto pids = read_pids(s->paths.instance(r.provider_id));
        if (!pids) return std::optional<Record>{};
        r.leader = (*pids)[0];
        r.app = (*pids)[1];
        r.agent = (*pids)[2];
        r.launching = false;
        const std::lock_guard lock(s->records_mutex);
        write_record(s->paths, r);
        return std::optional<Record>{r};
      },
      [s, r, deadline](Outcome<std::optional<Record>> out) {
        if (!s->alive()) return;
        const std::string key = r.provider_id;
        if (!out) {
          abandon_launch(s, r, r.pgid);
          s->finish_launch(key, tl::unexpected(out.error()));
          return;
        }
        if (*out) {
          const Record& done = **out;
          s->finish_launch(key, LaunchResult{done.provider_id, done.address, done.port, false});
          start_watch(s, key);
          return;
        }
        const bool exited = s->children.count(r.pgid) == 0;
        if (exited || uv_now(s->loop) >= deadline) {
          const std::string log =
              read_small_file(s->paths.instance(r.provider_id) / "app.log", 512);
          abandon_launch(s, r, r.pgid);
          s->finish_launch(key, tl::unexpected(ProviderError{
                                    std::string(exited ? "the launcher exited before starting"
                                                       : "the launcher did not report its pids in time") +
                                        (log.empty() ? "" : "; app.log ends: " + log),
                                    true}));
          return;
        }
        run_after(s->loop, s->options.poll_interval_ms,
                  [s, r, deadline] { poll_launch(s, r, deadline); });
      });
}

void spawn_launcher(const StatePtr& s, const LaunchRequest& req, Record r,
                    const std::map<std::string, std::string>& env_file_values) {
  auto* child = new LocalChild{};
  const std::string dir = s->paths.instance(r.provider_id).string();
  std::vector<std::string> env = launcher_env(s->options, req, r, env_file_values);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh";
  std::string dash_c = "-c";
  std::string script = kLauncherScript;
  std::string name = "tide-instance";  // $0 of the launcher, shown by ps
  std::array<char*, 5> argv{sh.data(), dash_c.data(), script.data(), name.data(), nullptr};

  std::array<uv_stdio_container_t, 3> stdio{};
  for (auto& c : stdio) c.flags = UV_IGNORE;  // /dev/null: the launcher must not hold our fds

  uv_process_options_t options{};
  options.file = sh.c_str();
  options.args = argv.data();
  options.env = envp.data();
  options.cwd = dir.c_str();
  // Its own session and process group; it outlives the coordinator.
  options.flags = UV_PROCESS_DETACHED;
  options.stdio_count = static_cast<int>(stdio.size());
  options.stdio = stdio.data();
  options.exit_cb = [](uv_process_t* handle, std::int64_t, int) {
    // libuv has reaped it; forget it. The state outlives every child handle
    // because ~LocalProvider closes the ones still open.
    auto* c = static_cast<LocalChild*>(handle->data);
    c->state->children.erase(handle->pid);
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete static_cast<LocalChild*>(h->data); });
  };
  child->handle.data = child;
  child->state = s.get();
  const int rc = uv_spawn(s->loop, &child->handle, &options);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&child->handle),
             [](uv_handle_t* h) { delete static_cast<LocalChild*>(h->data); });
    abandon_launch(s, r, 0);
    s->finish_launch(r.provider_id,
                     tl::unexpected(ProviderError{std::string("cannot start /bin/sh: ") + uv_strerror(rc), true}));
    return;
  }
  // Instances must not keep the coordinator's loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&child->handle));
  r.pgid = child->handle.pid;
  s->children[r.pgid] = child;
  poll_launch(s, r, uv_now(s->loop) + s->options.start_timeout_ms);
}

struct Signalled {
  bool found = false;    // a record existed
  bool running = false;  // processes remained and were signalled
  Record record;
};

void finish_terminate_cleanup(const StatePtr& s, const std::string& id,
                              tl::expected<void, ProviderError> result) {
  run_in_pool<bool>(
      s->loop,
      [s, id, ok = result.has_value()]() -> Outcome<bool> {
        if (!ok) return true;
        const std::lock_guard lock(s->records_mutex);
        std::error_code ec;
        fs::remove(s->paths.record(id), ec);
        fs::remove_all(s->paths.instance(id), ec);
        return true;
      },
      [s, id, result](Outcome<bool>) {
        if (!s->alive()) return;
        s->finish_terminate(id, result);
      });
}

void poll_terminate(const StatePtr& s, Record r, std::uint64_t grace_deadline,
                    std::uint64_t kill_deadline, bool killed) {
  run_in_pool<bool>(
      s->loop,
      [r]() -> Outcome<bool> {
        return !live_group_members(r.pgid, r.leader.start_ticks).empty() || ref_alive(r.app) ||
               ref_alive(r.agent);
      },
      [s, r, grace_deadline, kill_deadline, killed](Outcome<bool> still) {
        if (!s->alive()) return;
        if (!still) {
          finish_terminate_cleanup(s, r.provider_id, tl::unexpected(still.error()));
          return;
        }
        if (!*still) {
          finish_terminate_cleanup(s, r.provider_id, {});
          return;
        }
        const std::uint64_t now = uv_now(s->loop);
        if (!killed && now >= grace_deadline) {
          spdlog::info("local provider: {} ignored SIGTERM; sending SIGKILL", r.provider_id);
          ::kill(-r.pgid, SIGKILL);
          if (ref_alive(r.app)) ::kill(r.app.pid, SIGKILL);
          if (ref_alive(r.agent)) ::kill(r.agent.pid, SIGKILL);
          run_after(s->loop, s->options.poll_interval_ms, [s, r, grace_deadline, kill_deadline] {
            poll_terminate(s, r, grace_deadline, kill_deadline, true);
          });
          return;
        }
        if (killed && now >= kill_deadline) {
          finish_terminate_cleanup(
              s, r.provider_id,
              tl::unexpected(ProviderError{"processes of " + r.provider_id +
                                               " survived SIGKILL (uninterruptible sleep?)",
                                           true}));
          return;
        }
        run_after(s->loop, s->options.poll_interval_ms,
                  [s, r, grace_deadline, kill_deadline, killed] {
                    poll_terminate(s, r, grace_deadline, kill_deadline, killed);
                  });
      });
}

}  // namespace

// ---- LocalProvider ------------------------------------------------------------

LocalProvider::LocalProvider(uv_loop_t* loop, LocalProviderOptions options)
    : m_state(std::make_shared<State>()) {
  m_state->loop = loop;
  if (!options.wall_clock_ms) options.wall_clock_ms = system_clock_ms;
  m_state->paths = Paths{fs::path(options.state_dir) / "records", fs::path(options.state_dir) / "instances"};
  m_state->options = std::move(options);
  m_state->metrics = &m_metrics;
  m_state->exit_handler = &m_exit_handler;
  // Creating the directories at start-up is the one blocking file operation;
  // it happens before the loop runs any instance work. They are 0700 (records
  // and instance directories are the coordinator's alone); looser existing
  // ones are tightened. A failure shows up at the first launch.
  for (const fs::path& dir : {fs::path(m_state->options.state_dir), m_state->paths.records, m_state->paths.instances}) {
    if (auto made = files::ensure_private_dir(dir, files::kPrivateDir, files::kPrivateDir); !made) {
      spdlog::warn("local provider: {}", made.error());
    }
  }
}

LocalProvider::~LocalProvider() {
  m_state->metrics = nullptr;
  m_state->exit_handler = nullptr;
  cancel_all_watches(*m_state);
  m_state->launching.clear();
  m_state->terminating.clear();
  // Stop watching the launchers; the instances themselves keep running.
  for (auto& [pid, child] : m_state->children) {
    uv_close(reinterpret_cast<uv_handle_t*>(&child->handle),
             [](uv_handle_t* h) { delete static_cast<LocalChild*>(h->data); });
  }
  m_state->children.clear();
}

void LocalProvider::set_exit_handler(ExitHandler handler) {
  Provider::set_exit_handler(std::move(handler));
  const StatePtr s = m_state;
  if (!m_exit_handler) {
    cancel_all_watches(*s);
    return;
  }
  // Watch every instance recorded in the state dir: those launched here and
  // those an earlier coordinator left running.
  run_in_pool<std::vector<std::string>>(
      s->loop,
      [s]() -> Outcome<std::vector<std::string>> {
        const std::lock_guard lock(s->records_mutex);
        std::vector<std::string> ids;
        for (const auto& r : load_records(s->paths)) {
          if (!r.launching) ids.push_back(r.provider_id);
        }
        return ids;
      },
      [s](Outcome<std::vector<std::string>> ids) {
        if (!s->alive()) return;
        if (!ids) {
          spdlog::warn("local provider: cannot read instance records to watch them: {}",
                       ids.error().message);
          return;
        }
        for (const auto& id : *ids) start_watch(s, id);
      });
}

std::string LocalProvider::instance_dir(std::string_view provider_id) const {
  return m_state->paths.instance(provider_id).string();
}

void LocalProvider::launch(LaunchRequest request, LaunchCallback done) {
  ++m_metrics.launch.calls;
  const StatePtr s = m_state;
  if (auto problem = validate(request); !problem.empty()) {
    ++m_metrics.launch.failures;
    run_after(s->loop, 0, [done = std::move(done), problem] {
      done(tl::unexpected(ProviderError{problem, false}));
    });
    return;
  }
  const std::string key = request.idempotency_key;
  auto& waiting = s->launching[key];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return;  // the same key is being launched: share its outcome
  if (s->terminating.count(key) != 0) {
    run_after(s->loop, 0, [s, key] {
      s->finish_launch(key, tl::unexpected(ProviderError{key + " is being terminated", true}));
    });
    return;
  }
  const std::int64_t now_ms = s->options.wall_clock_ms();
  run_in_pool<Prepared>(
      s->loop, [s, request, now_ms]() { return prepare_launch(*s, request, now_ms); },
      [s, request, key](Outcome<Prepared> prepared) {
        if (!s->alive()) return;
        if (!prepared) {
          s->finish_launch(key, tl::unexpected(prepared.error()));
          return;
        }
        if (prepared->existing) {
          s->finish_launch(key, *prepared->existing);
          start_watch(s, key);
          return;
        }
        // A watch left from an earlier instance of this key is about a
        // process the new one replaces.
        cancel_watch(*s, key);
        spawn_launcher(s, request, prepared->record, prepared->env_file_values);
      });
}

void LocalProvider::terminate(std::string provider_id, std::uint32_t grace_ms, TerminateCallback done) {
  ++m_metrics.terminate.calls;
  const StatePtr s = m_state;
  if (auto problem = check_identifier("provider_id", provider_id); !problem.empty()) {
    ++m_metrics.terminate.failures;
    run_after(s->loop, 0, [done = std::move(done), problem] {
      done(tl::unexpected(ProviderError{problem, false}));
    });
    return;
  }
  if (s->launching.count(provider_id) != 0) {
    ++m_metrics.terminate.failures;
    run_after(s->loop, 0, [done = std::move(done), provider_id] {
      done(tl::unexpected(ProviderError{provider_id + " is still being launched", true}));
    });
    return;
  }
  // Asked: whatever its application does from now on is not news.
  cancel_watch(*s, provider_id);
  auto& waiting = s->terminating[provider_id];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return;
  run_in_pool<Signalled>(
      s->loop,
      [s, provider_id]() -> Outcome<Signalled> {
        const std::lock_guard lock(s->records_mutex);
        Signalled out;
        auto r = read_record_file(s->paths.record(provider_id), nullptr);
        if (!r) return out;  // unknown: already gone
        out.found = true;
        out.record = *r;
        if (r->launching) {
          // Interrupted launch: complete what is known before signalling.
          if (const auto pids = read_pids(s->paths.instance(provider_id))) {
            out.record.leader = (*pids)[0];
            out.record.app = (*pids)[1];
            out.record.agent = (*pids)[2];
            out.record.pgid = out.record.leader.pid;
            out.record.launching = false;
          }
        }
        if (!out.record.launching && record_alive(out.record)) {
          out.running = true;
          ::kill(-out.record.pgid, SIGTERM);
        }
        return out;
      },
      [s, provider_id, grace_ms](Outcome<Signalled> sig) {
        if (!s->alive()) return;
        if (!sig) {
          s->finish_terminate(provider_id, tl::unexpected(sig.error()));
          return;
        }
        if (!sig->running) {
          finish_terminate_cleanup(s, provider_id, {});
          return;
        }
        const std::uint64_t now = uv_now(s->loop);
        poll_terminate(s, sig->record, now + grace_ms, now + grace_ms + s->options.kill_timeout_ms,
                       false);
      });
}

void LocalProvider::list(ListCallback done) {
  ++m_metrics.list.calls;
  const StatePtr s = m_state;
  const auto busy = s->busy_ids();
  std::set<std::string> stopping;
  for (const auto& [k, v] : s->terminating) stopping.insert(k);
  const std::int64_t now_ms = s->options.wall_clock_ms();
  run_in_pool<std::vector<ProviderInstance>>(
      s->loop,
      [s, busy, stopping, now_ms]() -> Outcome<std::vector<ProviderInstance>> {
        const std::lock_guard lock(s->records_mutex);
        std::vector<ProviderInstance> out;
        for (auto& r : load_records(s->paths)) {
          if (busy.count(r.provider_id) != 0) {
            out.push_back(to_instance(r, InstanceState::Pending));
          } else if (stopping.count(r.provider_id) != 0) {
            out.push_back(to_instance(r, InstanceState::Stopping));
          } else {
            out.push_back(inspect_record(s->paths, r, s->options.start_timeout_ms, now_ms));
          }
        }
        return out;
      },
      [s, done = std::move(done)](Outcome<std::vector<ProviderInstance>> out) {
        if (!s->alive()) return;
        if (!out) {
          s->count_failure(&ProviderMetrics::list);
        } else {
          // Instances adopted by list() (a launch a crash interrupted) are
          // watched from now on; the others already are.
          for (const auto& i : *out) {
            if (i.state == InstanceState::Running) start_watch(s, i.provider_id);
          }
        }
        done(std::move(out));
      });
}

void LocalProvider::describe(std::string provider_id, DescribeCallback done) {
  ++m_metrics.describe.calls;
  const StatePtr s = m_state;
  if (auto problem = check_identifier("provider_id", provider_id); !problem.empty()) {
    ++m_metrics.describe.failures;
    run_after(s->loop, 0, [done = std::move(done), problem] {
      done(tl::unexpected(ProviderError{problem, false}));
    });
    return;
  }
  const bool busy = s->launching.count(provider_id) != 0;
  const bool stopping = s->terminating.count(provider_id) != 0;
  const std::int64_t now_ms = s->options.wall_clock_ms();
  run_in_pool<ProviderInstance>(
      s->loop,
      [s, provider_id, busy, stopping, now_ms]() -> Outcome<ProviderInstance> {
        const std::lock_guard lock(s->records_mutex);
        auto r = read_record_file(s->paths.record(provider_id), nullptr);
        if (!r) {
          ProviderInstance gone;
          gone.provider_id = provider_id;
          gone.state = InstanceState::Gone;
          gone.message = "no such instance";
          return gone;
        }
        if (busy) return to_instance(*r, InstanceState::Pending);
        if (stopping) return to_instance(*r, InstanceState::Stopping);
        return inspect_record(s->paths, *r, s->options.start_timeout_ms, now_ms);
      },
      [s, done = std::move(done)](Outcome<ProviderInstance> out) {
        if (!s->alive()) return;
        if (!out) s->count_failure(&ProviderMetrics::describe);
        done(std::move(out));
      });
}

}  // namespace tide::provider
