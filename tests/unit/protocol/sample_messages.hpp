// One message per command with a non-default value in every field; shared by
// the round-trip and golden-frame tests (the golden files encode exactly these).
#pragma once

#include <string_view>
#include <vector>

#include "protocol/messages.hpp"

namespace tide::protocol::testing {

struct Sample {
  std::string_view file;  // tests/data/golden/<file>.bin
  Message message;
};

// Every command exactly once, in the order of the Message variant.
std::vector<Sample> sample_messages();

// The realistic REPORT used by the benchmark too: 4 probes, all 6 metrics,
// 3 custom metrics.
Report sample_report();

}  // namespace tide::protocol::testing
