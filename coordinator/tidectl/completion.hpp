// `tidectl completion bash|zsh`: a shell completion script generated from
// the CLI11 command tree itself, so that it can never disagree with the
// commands and flags tidectl has. The package installs both at build time
// (bash-completion's and zsh's vendor directories).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace tide::tidectl {

// `shell` is "bash" or "zsh" (the caller checked it).
[[nodiscard]] std::string completion_script(const CLI::App& app, const std::string& shell);

}  // namespace tide::tidectl
