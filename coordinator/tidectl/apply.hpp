// tidectl apply: a fleet file (YAML) to the JSON POST /v1/apply takes, with
// a map from each JSON path to the YAML line it came from, so that the
// coordinator's refusal ("groups[1].policies[0].threshold: ...") is shown
// as "fleet.yaml:23: groups[1].policies[0].threshold: ...".
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace tide::tidectl {

struct YamlJson {
  nlohmann::json value;
  std::map<std::string, int> lines;  // JSON path ("" = the root) -> 1-based line
};

struct YamlError {
  int line = 0;  // 1-based; 0 when unknown
  std::string message;
};

// Plain scalars become numbers, booleans (true/false) or null (~, null,
// empty) as in YAML 1.2's core schema; quoted scalars stay strings. Refuses
// duplicate keys and non-scalar keys. Never throws.
[[nodiscard]] tl::expected<YamlJson, YamlError> yaml_to_json(const std::string& text);

// The line of `path`, or of its nearest ancestor in the file (a missing
// required field is reported at the object that lacks it).
[[nodiscard]] int line_of(const YamlJson& document, std::string path);

}  // namespace tide::tidectl
