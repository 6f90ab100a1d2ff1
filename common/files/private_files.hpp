// Files and directories that hold secrets, with modes set explicitly.
//
// open(2) and mkdir(2) apply the process umask, so a daemon started as root
// with umask 022 would create its state directory 0755 and its files 0644.
// These functions set the mode they are given whatever the umask, and tighten
// an existing path whose mode allows more than the caller's maximum (clearing
// only the extra bits), logging one warning for each path they tighten. A path
// that cannot be tightened (not our file) is logged, not an error: the daemon
// still starts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <sys/types.h>
#include <tl/expected.hpp>

namespace tide::files {

// What tighten_mode did to one path (permission bits only, e.g. 0755 -> 0750).
struct Tightened {
  std::filesystem::path path;
  mode_t before = 0;
  mode_t after = 0;
};

// nullopt: the path was created with the wanted mode, or already within it.
using Outcome = tl::expected<std::optional<Tightened>, std::string>;

// Modes used across tide.
inline constexpr mode_t kPrivateDir = 0700;    // created directories
inline constexpr mode_t kGroupReadDir = 0750;  // the most a state directory may allow
inline constexpr mode_t kPrivateFile = 0600;   // database, key and record files

// Creates `dir` with `create_mode` (missing parents get the default mode), or
// tightens an existing one to at most `max_mode`. Fails when it cannot be
// created or is not a directory.
[[nodiscard]] Outcome ensure_private_dir(const std::filesystem::path& dir,
                                         mode_t create_mode = kPrivateDir,
                                         mode_t max_mode = kGroupReadDir);

// Creates an empty `file` with `mode` when it is missing, or tightens an
// existing one to at most `mode`. Fails when it cannot be created.
[[nodiscard]] Outcome ensure_private_file(const std::filesystem::path& file,
                                          mode_t mode = kPrivateFile);

// Clears the bits of `max_mode`'s complement on an existing path; nothing
// when the path is missing.
[[nodiscard]] Outcome tighten_mode(const std::filesystem::path& path, mode_t max_mode);

// The permission bits of `path` (following symlinks), nullopt when missing.
[[nodiscard]] std::optional<mode_t> permission_bits(const std::filesystem::path& path);

// "0750" — how modes are written in messages.
[[nodiscard]] std::string octal(mode_t mode);

}  // namespace tide::files
