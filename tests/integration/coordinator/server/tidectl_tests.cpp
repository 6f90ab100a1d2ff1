// tidectl as a user meets it: the real binary against a real Server (local
// provider, no load balancer, a temporary state directory) over HTTP on
// 127.0.0.1, and the shell completion it generates run by a real bash.
#include <string>

#include <catch2/catch.hpp>

#include "tests/integration/coordinator/server/server_fixture.hpp"

using namespace tide::coordinator::test;

namespace {

const std::string kTidectl = std::string(TIDE_BIN_DIR) + "/tidectl";

// What bash's completion offers for the words typed so far (the last one
// being completed), with the script `tidectl completion bash` printed.
std::string bash_completes(const std::string& words) {
  const std::string script = "source <(" + kTidectl + " completion bash) && COMP_WORDS=(" + words +
                             ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _tidectl && echo \"${COMPREPLY[*]}\"";
  auto result = run("bash -c '" + script + "'");
  REQUIRE(result.exit_code == 0);
  return result.output;
}

}  // namespace

TEST_CASE("tidectl completion: bash offers the commands, aliases, flags and values of the command typed so far",
          "[tidectl][completion]") {
  CHECK(bash_completes("tidectl gr") == "group\n");
  CHECK(bash_completes("tidectl group \"\"") == "create list show set enable disable metrics delete\n");
  CHECK(bash_completes("tidectl launch-config cr") == "create\n");  // an alias leads to its command
  // Global flags and their values are skipped wherever they stand.
  CHECK(bash_completes("tidectl -o json group create web --mi") == "--min\n");
  CHECK(bash_completes("tidectl --endpoint http://h:1 instance l") == "list\n");
  CHECK(bash_completes("tidectl group list -o \"\"") == "table wide json yaml\n");
  CHECK(bash_completes("tidectl completion \"\"") == "bash zsh\n");
  // Every command the help lists is offered at the top.
  const std::string top = bash_completes("tidectl \"\"");
  for (const char* command : {"lc", "group", "instance", "activity", "schedule", "policy", "rollout", "apply", "cost"}) {
    CHECK(top.find(command) != std::string::npos);
  }
  // zsh's script is well-formed where zsh is installed; both need no coordinator.
  auto zsh = run(kTidectl + " completion zsh");
  CHECK(zsh.exit_code == 0);
  CHECK(zsh.output.starts_with("#compdef tidectl"));
  if (run("command -v zsh").exit_code == 0) {
    CHECK(run(kTidectl + " completion zsh > /tmp/tidectl-completion-test.zsh && zsh -n /tmp/tidectl-completion-test.zsh").exit_code == 0);
  }
  auto bad = run(kTidectl + " completion fish");
  CHECK(bad.exit_code == 2);
}
