// The web console in a real browser against a real fleet: this test owns the
// coordinator (with an API token), its agents and instances, and runs
// tests/system/console/console_browser.mjs (Playwright driving Debian's
// Chromium), restarting the coordinator when the script asks for it. The
// screenshots and figures are kept in build/test-artifacts/console.
#include <filesystem>

#include "fleet_fixture.hpp"

namespace st = tide::system_test;
using namespace std::chrono_literals;

TEST_CASE(
    "the web console in Chromium: login, live changes, actions the CLI sees, history across a "
    "restart, "
    "no accessibility violations",
    "[system][console]") {
  const std::filesystem::path chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) {
    WARN(
        "Chromium is not installed (scripts/install-deps installs it): the browser test is "
        "skipped");
    return;
  }
  INFO("the console must be built where Chromium is installed: " TIDE_CONSOLE_DIR);
  REQUIRE(std::filesystem::exists(std::filesystem::path(TIDE_CONSOLE_DIR) / "index.html"));

  st::Fleet fleet;
  fleet.set_api_token("console-system-test-token-0123456789abcdef");
  // A sample a second: the charts fill within the test's time.
  fleet.add_config("history:\n  interval: 1s\n");
  fleet.start_coordinator();
  fleet.create_group(1, 2500);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));

  const std::filesystem::path artifacts =
      std::filesystem::path(TIDE_BINARY_DIR) / "test-artifacts" / "console";
  std::filesystem::remove_all(artifacts);
  const std::filesystem::path handshake = fleet.dir() / "browser";
  std::filesystem::create_directories(handshake);
  st::Child browser(
      {TIDE_NODE, std::string(TIDE_SOURCE_DIR) + "/tests/system/console/console_browser.mjs"},
      fleet.dir() / "browser.log",
      {{"TIDE_CONSOLE_BASE", fleet.api_endpoint()},
       {"TIDE_TOKEN", fleet.api_token()},
       {"TIDECTL", std::string(TIDE_BIN_DIR) + "/tidectl"},
       {"CHROMIUM", chromium.string()},
       {"ARTIFACTS", artifacts.string()},
       {"HANDSHAKE_DIR", handshake.string()},
       {"NODE_PATH", TIDE_CONSOLE_NODE_MODULES},
       {"GROUP", "web"}});
  std::optional<int> status;
  bool restarted = false;
  const auto deadline = std::chrono::steady_clock::now() + 420s;
  while (!status && std::chrono::steady_clock::now() < deadline) {
    if (!restarted && std::filesystem::exists(handshake / "restart-please")) {
      fleet.stop_coordinator();
      fleet.start_coordinator();
      std::ofstream(handshake / "restarted") << "1";
      restarted = true;
    }
    status = browser.wait(200ms);
  }
  if (!status) browser.signal(SIGKILL);
  const std::string log = st::read_file(fleet.dir() / "browser.log");
  INFO("browser script's output:\n" << log);
  REQUIRE(status.has_value());
  CHECK(restarted);
  REQUIRE(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}
