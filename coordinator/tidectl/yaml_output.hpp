// `-o yaml`: the API's JSON answer as YAML (kubectl's -o yaml), keys in the
// API's order and names, so that it can be edited and fed to `tidectl apply`.
#pragma once

#include <ostream>

#include <nlohmann/json.hpp>

namespace tide::tidectl {

void print_yaml(std::ostream& out, const nlohmann::json& value);

}  // namespace tide::tidectl
