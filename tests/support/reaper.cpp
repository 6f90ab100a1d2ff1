#include "tests/support/reaper.hpp"

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tide::test_support {

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The start time of `pid` in clock ticks since boot (field 22 of
// /proc/<pid>/stat), 0 when it is gone: with the pid it names one process.
std::uint64_t start_ticks(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

// Whether `text` names `dir`: the path itself (followed by '/', NUL, a space
// or the end), not a longer name that starts the same.
bool names_dir(const std::string& text, const std::string& dir) {
  for (auto at = text.find(dir); at != std::string::npos; at = text.find(dir, at + 1)) {
    const std::size_t end = at + dir.size();
    if (end == text.size() || text[end] == '/' || text[end] == '\0' || text[end] == ' ')
      return true;
  }
  return false;
}

// The reaper's body, in its own session; never returns.
[[noreturn]] void reap_when_closed(int pipe_read, const std::filesystem::path& dir) {
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  char byte = 0;
  ssize_t n = 0;
  do {
    n = ::read(pipe_read, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1) ::_exit(0);  // finish(): the test cleaned up itself
  // The test process died without finishing: kill its fleet.
  const auto killed = kill_processes_in(dir, std::chrono::seconds(10));
  {
    std::ofstream log(dir / "reaper.log", std::ios::app);
    log << "the test process died without cleaning up; the reaper killed " << killed.size()
        << " processes:";
    for (const pid_t pid : killed) log << ' ' << pid;
    log << '\n';
  }  // closed (flushed) before _exit
  ::_exit(0);
}

}  // namespace

Reaper::Reaper(std::filesystem::path dir) : m_dir(std::move(dir)) {
  std::ofstream(m_dir / "tide-owner") << ::getpid() << ' ' << start_ticks(::getpid()) << '\n';
  int fds[2] = {-1, -1};
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("Reaper: pipe2 failed");
  const pid_t middle = ::fork();
  if (middle < 0) throw std::runtime_error("Reaper: fork failed");
  if (middle == 0) {
    // A session of its own (Ctrl-C's SIGINT goes to the terminal's process
    // group, not here) and a second fork: the reaper's parent exits at once,
    // so it is nobody's descendant that ctest would kill with the test.
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    ::dup2(fds[0], 3);
    ::close_range(4, ~0U, 0);  // the write end too: EOF must mean the test is gone
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      // ctest reads the test's output until every writer is gone: hold none of it.
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (null > 3) ::close(null);
    }
    reap_when_closed(3, m_dir);
  }
  ::close(fds[0]);
  m_pipe = fds[1];
  ::waitpid(middle, nullptr, 0);
}

Reaper::~Reaper() {
  finish();
}

void Reaper::finish() {
  if (m_pipe < 0) return;
  kill_processes_in(m_dir, std::chrono::seconds(10));
  const char done = 'x';
  (void)!::write(m_pipe, &done, 1);
  ::close(m_pipe);
  m_pipe = -1;
}

std::vector<pid_t> processes_in(const std::filesystem::path& dir) {
  const std::string wanted = dir.lexically_normal().string();
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    std::error_code cwd_error;
    const std::string cwd = std::filesystem::read_symlink(entry.path() / "cwd", cwd_error).string();
    if ((!cwd_error && names_dir(cwd, wanted)) ||
        names_dir(read_file(entry.path() / "cmdline"), wanted) ||
        names_dir(read_file(entry.path() / "environ"), wanted)) {
      found.push_back(pid);
    }
  }
  return found;
}

std::vector<pid_t> kill_processes_in(const std::filesystem::path& dir,
                                     std::chrono::milliseconds timeout) {
  std::set<pid_t> killed;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto found = processes_in(dir);
    if (found.empty()) break;
    for (const pid_t pid : found) {
      ::kill(pid, SIGKILL);
      killed.insert(pid);
    }
    // (A killed child of ours stays a zombie until it is waited for; a zombie
    // has no command line, environment or cwd left, so it is not found again.)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {killed.begin(), killed.end()};
}

}  // namespace tide::test_support
