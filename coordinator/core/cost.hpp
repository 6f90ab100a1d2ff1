// Cost accounting (docs/api.md, "Cost"): instance-seconds, instance-
// hours and cost per group and per launch configuration over a period, next
// to what a fleet fixed at the period's peak would have cost. The product
// brief claims about 30 % saving from scheduled scaling; this computes a
// user's own number from the instances' lifecycle rows.
//
// Pure: instance rows and launch configurations in, a report out. The
// period is half-open, [from_ms, to_ms); the shell passes `to_ms` (usually
// now) in, so an instance still alive is billed up to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// One (group, launch configuration version) pair's share of a group's cost.
struct CostLine {
  std::string launch_configuration_id;
  std::uint32_t launch_configuration_version = 0;
  double hourly_price = 0.0;      // from the launch configuration; 0 when it is gone
  bool price_known = true;        // false: the launch configuration row no longer exists
  std::uint32_t instances = 0;    // launched instances that ran inside the period
  double instance_seconds = 0.0;
  double instance_hours = 0.0;
  double cost = 0.0;              // instance_hours * hourly_price
};

// Totals for one group, or for all of them (CostReport::total, group "").
struct CostSummary {
  std::string group;
  std::uint32_t instances = 0;
  double instance_seconds = 0.0;
  double instance_hours = 0.0;
  double cost = 0.0;
  // The most launched instances running at the same moment inside the period.
  std::uint32_t peak_instances = 0;
  // What a fleet fixed at the peak for the whole period would have cost: the
  // highest hourly rate (sum of the running instances' prices) seen at any
  // moment, times the period's hours. With one price this is
  // peak_instances * price * hours.
  double peak_hourly_rate = 0.0;
  double peak_fixed_cost = 0.0;
  double saving = 0.0;      // peak_fixed_cost - cost
  double saving_pct = 0.0;  // saving / peak_fixed_cost * 100; 0 when peak_fixed_cost is 0
  // Attached servers run whatever tide does; tide bills none of their time.
  std::uint32_t attached_instances = 0;
  double attached_instance_seconds = 0.0;
  std::vector<CostLine> by_launch_configuration;  // by id, then version (empty in the total)
};

struct CostReport {
  TimeMs from_ms = 0;
  TimeMs to_ms = 0;
  std::vector<CostSummary> groups;  // by name; only groups with an instance in the period
  CostSummary total;                // all groups together; its peak is the fleet-wide one
};

struct CostError {
  std::string message;
};

// `group`: only that group's instances. Refuses an empty or reversed period.
[[nodiscard]] tl::expected<CostReport, CostError> compute_cost(const std::vector<Instance>& instances,
                                                               const std::vector<LaunchConfiguration>& configs,
                                                               TimeMs from_ms, TimeMs to_ms,
                                                               const std::optional<std::string>& group = std::nullopt);

// The part of [from_ms, to_ms) the instance counts for (launched: billed;
// attached: reported), or nullopt when it did not run inside the period.
struct BilledInterval {
  TimeMs start_ms = 0;
  TimeMs end_ms = 0;
};
[[nodiscard]] std::optional<BilledInterval> billed_interval(const Instance& instance, TimeMs from_ms, TimeMs to_ms);

}  // namespace tide::coordinator
