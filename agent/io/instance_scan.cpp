#include "agent/io/instance_scan.hpp"

#include <array>
#include <cerrno>
#include <ctime>
#include <string>
#include <string_view>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace tide::agent {
namespace {

std::uint64_t boot_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000u;
}

bool is_pid_name(const char* name) {
  if (*name == '\0') return false;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
  }
  return true;
}

}  // namespace

InstanceScan scan_instance_processes(pid_t agent_pid, pid_t agent_session) {
  InstanceScan scan;
  // Taken before the walk: a process missing from it started after this.
  scan.boot_ms = boot_ms();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return scan;
  // One stat line is at most ~1.2 KiB (52 numbers and a 16-byte name).
  std::array<char, 2048> buffer{};
  std::string path;  // reused: no allocation per process
  while (const dirent* entry = ::readdir(proc)) {
    if (!is_pid_name(entry->d_name)) continue;
    path.assign("/proc/").append(entry->d_name).append("/stat");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // gone since readdir
    ssize_t n = 0;
    do {
      n = ::read(fd, buffer.data(), buffer.size());
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) continue;  // a process that exits between open and read reads ESRCH
    auto process = parse_process_stat(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    if (process && is_instance_process(*process, agent_pid, agent_session))
      scan.processes.push_back(*process);
  }
  ::closedir(proc);
  return scan;
}

}  // namespace tide::agent
