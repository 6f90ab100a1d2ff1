#include "coordinator/tidectl/yaml_output.hpp"

#include <cctype>
#include <cstdlib>
#include <string>

#include <yaml-cpp/yaml.h>

namespace tide::tidectl {
namespace {

// A string a YAML reader would take for a boolean, null or number.
bool reads_as_other_type(const std::string& text) {
  std::string lower;
  for (const char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"", "~", "null", "y", "n", "yes", "no", "true", "false", "on", "off"}) {
    if (lower == word) return true;
  }
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() || lower == ".inf" || lower == "-.inf" || lower == ".nan";
}

void emit(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) emit(out, item);
      out << YAML::EndSeq;
      return;
    case nlohmann::json::value_t::string: {
      // Quoted when YAML would read it as something else ("yes", "1.0", "~").
      const std::string& text = value.get_ref<const std::string&>();
      if (reads_as_other_type(text)) out << YAML::DoubleQuoted;
      out << text;
      return;
    }
    case nlohmann::json::value_t::boolean: out << value.get<bool>(); return;
    case nlohmann::json::value_t::number_integer: out << value.get<std::int64_t>(); return;
    case nlohmann::json::value_t::number_unsigned: out << value.get<std::uint64_t>(); return;
    case nlohmann::json::value_t::number_float: out << value.get<double>(); return;
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary: out << YAML::Null; return;
  }
}

}  // namespace

void print_yaml(std::ostream& out, const nlohmann::json& value) {
  YAML::Emitter emitter;
  emitter.SetIndent(2);
  emitter.SetSeqFormat(YAML::Block);
  emit(emitter, value);
  out << emitter.c_str() << '\n';
}

}  // namespace tide::tidectl
