#include "common/files/private_files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tide::files {
namespace {

std::string os_error(const std::string& what, const std::filesystem::path& path, int err) {
  return what + " " + path.string() + ": " + std::strerror(err);
}

}  // namespace

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::optional<mode_t> permission_bits(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_mode & 07777;
}

Outcome tighten_mode(const std::filesystem::path& path, mode_t max_mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return tl::make_unexpected(os_error("cannot stat", path, errno));
  }
  const mode_t before = st.st_mode & 07777;
  // Set-id and sticky bits are never wanted on what tide owns.
  const mode_t after = before & max_mode & 0777;
  if (after == before) return std::nullopt;
  if (::chmod(path.c_str(), after) != 0) {
    // Someone else's file (or a read-only mount): say so, do not stop.
    spdlog::warn("{} is mode {}, more open than {}, and cannot be tightened: {}", path.string(),
                 octal(before), octal(max_mode), std::strerror(errno));
    return std::nullopt;
  }
  spdlog::warn("{} was mode {}; tightened to {}", path.string(), octal(before), octal(after));
  return Tightened{path, before, after};
}

Outcome ensure_private_dir(const std::filesystem::path& dir, mode_t create_mode, mode_t max_mode) {
  std::error_code ec;
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec)
      return tl::make_unexpected("cannot create " + dir.parent_path().string() + ": " +
                                 ec.message());
  }
  if (::mkdir(dir.c_str(), create_mode) == 0) {
    // mkdir applied the umask; chmod does not.
    if (::chmod(dir.c_str(), create_mode) != 0)
      return tl::make_unexpected(os_error("cannot chmod", dir, errno));
    return std::nullopt;
  }
  if (errno != EEXIST) return tl::make_unexpected(os_error("cannot create", dir, errno));
  if (!std::filesystem::is_directory(dir, ec))
    return tl::make_unexpected(dir.string() + " is not a directory");
  return tighten_mode(dir, max_mode);
}

Outcome ensure_private_file(const std::filesystem::path& file, mode_t mode) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd >= 0) {
    const bool ok = ::fchmod(fd, mode) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) return tl::make_unexpected(os_error("cannot chmod", file, err));
    return std::nullopt;
  }
  if (errno != EEXIST) return tl::make_unexpected(os_error("cannot create", file, errno));
  return tighten_mode(file, mode);
}

}  // namespace tide::files
