// Shared helpers for the store tests: a temporary directory that removes
// itself, and sample rows that pass the model's validation.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include "coordinator/core/model.hpp"
#include "coordinator/io/store/store.hpp"

// REQUIRE that a Result holds a value, showing the StoreError otherwise.
#define TIDE_REQUIRE_OK(expr)                                            \
  do {                                                                   \
    const auto& tide_result_ = (expr);                                   \
    INFO((tide_result_ ? std::string() : tide_result_.error().message)); \
    REQUIRE(tide_result_.has_value());                                   \
  } while (false)

namespace tide::coordinator::store::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tide-store-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    m_path = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (m_path / name).string(); }
  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

inline LaunchConfiguration sample_config(const std::string& id = "web") {
  LaunchConfiguration c;
  c.id = id;
  c.version = 1;
  c.command = "tide-sample-app --port 8080 --name \"a b\"";
  c.port = 8080;
  c.env = {{"MODE", "prod"}, {"QUOTE", "say \"hi\"\n"}, {"UNICODE", "\xc3\xa9t\xc3\xa9"}};
  c.agent.readiness_path = "/healthz/ready";
  c.agent.report_interval_ms = 500;
  c.hourly_price = 0.125;
  c.created_ms = 1'700'000'000'000;
  return c;
}

inline ScalingGroup sample_group(const std::string& name = "web-group",
                                 const std::string& lc = "web", std::uint32_t lc_version = 1) {
  ScalingGroup g;
  g.name = name;
  g.min = 1;
  g.max = 10;
  g.desired = 3;
  g.launch_configuration_id = lc;
  g.launch_configuration_version = lc_version;
  g.termination_policy = TerminationPolicy::OldestLaunchConfiguration;
  g.lb = LbBinding{"be_web", 8080};
  g.health_check_grace_period_ms = 12'000;
  g.default_cooldown_ms = 60'000;
  g.boot_timeout_ms = 90'000;
  g.drain_timeout_ms = 15'000;
  g.warmup_ms = 5'000;
  g.retry = RetryPolicy{3, 500, 1.5, 30'000};
  g.fail_static_share = 0.25;
  g.replacement_rate = 0.5;
  g.liveness_window_ms = 7'000;
  g.enabled = false;
  g.created_ms = 1'700'000'000'100;
  g.updated_ms = 1'700'000'000'200;
  return g;
}

inline Instance sample_instance(const std::string& id = "i-0000000000000001",
                                const std::string& group = "web-group") {
  Instance i;
  i.id = id;
  i.group = group;
  i.origin = InstanceOrigin::Launched;
  i.state = LifecycleState::Warming;
  i.protected_from_scale_in = true;
  i.health = Health::Unhealthy;
  i.health_reason = "probe http failed: 503";
  i.provider_id = "pid:4242";
  i.address = "127.0.1.7";
  i.port = 8080;
  i.launch_configuration_id = "web";
  i.launch_configuration_version = 1;
  i.enrollment_token_hash = std::string(64, 'a');
  i.agent_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  i.idempotency_key = "launch-" + id;
  i.exit_reason = ExitReason::Replace;
  i.activity_id = "a-00000000000000aa";
  i.created_ms = 1'700'000'001'000;
  i.launched_ms = 1'700'000'002'000;
  i.state_since_ms = 1'700'000'003'000;
  i.unhealthy_since_ms = 1'700'000'004'000;
  return i;
}

// Opens a store and seeds one launch configuration and one group using it.
inline Store seeded_store(const std::string& path) {
  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  TIDE_REQUIRE_OK(store->insert_launch_configuration(sample_config()));
  TIDE_REQUIRE_OK(store->insert_group(sample_group()));
  return std::move(*store);
}

}  // namespace tide::coordinator::store::testing
