#include "system_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>

namespace tide::system_test {

Child::Child(std::vector<std::string> argv, const std::filesystem::path& log_file,
             const std::map<std::string, std::string>& env) {
  const pid_t parent = ::getpid();
  m_pid = ::fork();
  if (m_pid == 0) {
    // Dies with the test process, whatever kills it (a fleet's instances are
    // the Reaper's business: they are not our children).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

Child::~Child() {
  if (m_pid > 0 && !m_reaped) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
}

void Child::signal(int signo) const {
  if (m_pid > 0 && !m_reaped) ::kill(m_pid, signo);
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_reaped = true;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

HttpResult http(const std::string& method, const std::string& base, const std::string& path,
                const std::optional<nlohmann::json>& body, const std::string& token) {
  httplib::Client client(base);
  if (!token.empty()) client.set_bearer_token_auth(token);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(10, 0);
  const std::string payload = body ? body->dump() : "";
  httplib::Result result = method == "GET"     ? client.Get(path.c_str())
                           : method == "POST"  ? client.Post(path.c_str(), payload, "application/json")
                           : method == "PATCH" ? client.Patch(path.c_str(), payload, "application/json")
                           : method == "PUT"   ? client.Put(path.c_str(), payload, "application/json")
                                               : client.Delete(path.c_str());
  HttpResult out;
  if (!result) return out;
  out.status = result->status;
  out.text = result->body;
  out.body = nlohmann::json::parse(result->body, nullptr, false);
  return out;
}

std::vector<pid_t> processes_matching(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(entry.path() / "cmdline");
    for (auto& c : cmdline) c = c == '\0' ? ' ' : c;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid != ::getpid() && cmdline.find(needle) != std::string::npos) found.push_back(pid);
  }
  return found;
}

WrkResult parse_wrk(const std::string& output) {
  WrkResult result;
  result.output = output;
  std::smatch match;
  if (std::regex_search(output, match, std::regex(R"((\d+) requests in)"))) result.requests = std::stoull(match[1]);
  if (std::regex_search(output, match, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) result.non_2xx = std::stoull(match[1]);
  if (std::regex_search(output, match, std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))"))) {
    result.socket_errors = std::stoull(match[1]) + std::stoull(match[2]) + std::stoull(match[3]) + std::stoull(match[4]);
  }
  return result;
}

ShellRun run_shell(const std::string& command, const std::filesystem::path& log,
                   std::chrono::milliseconds timeout) {
  std::ofstream(log, std::ios::trunc).flush();
  Child child({"/bin/sh", "-c", command}, log);
  const auto status = child.wait(timeout);
  ShellRun run;
  if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.output = read_file(log);
  return run;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  return ::mkdtemp(pattern.data());
}

}  // namespace tide::system_test
