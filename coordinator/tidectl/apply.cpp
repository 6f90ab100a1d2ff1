// tidectl apply -f fleet.yaml [--dry-run] (docs/apply.md).
#include "coordinator/tidectl/apply.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "coordinator/tidectl/commands.hpp"
#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {

using nlohmann::json;

namespace {

struct Converter {
  std::map<std::string, int> lines;

  json scalar(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    // Tag "!" marks a quoted (non-plain) scalar: always a string.
    if (node.Tag() == "!") return text;
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    static const std::regex kInteger(R"([-+]?[0-9]+)");
    static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    if (std::regex_match(text, kInteger)) {
      errno = 0;
      char* end = nullptr;
      const long long value = std::strtoll(text.c_str(), &end, 10);
      if (errno == 0) return value;
    }
    if (std::regex_match(text, kFloat)) return std::strtod(text.c_str(), nullptr);
    return text;
  }

  tl::expected<json, YamlError> convert(const YAML::Node& node, const std::string& path) {
    lines.emplace(path, node.Mark().line + 1);
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined: return json(nullptr);
      case YAML::NodeType::Scalar: return scalar(node);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        std::size_t i = 0;
        for (const auto& item : node) {
          auto value = convert(item, path + "[" + std::to_string(i++) + "]");
          if (!value) return value;
          out.push_back(std::move(*value));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        for (const auto& pair : node) {
          const int line = pair.first.Mark().line + 1;
          if (!pair.first.IsScalar()) return tl::make_unexpected(YamlError{line, "a key must be a plain name"});
          const std::string key = pair.first.Scalar();
          const std::string child = path.empty() ? key : path + "." + key;
          if (out.contains(key)) return tl::make_unexpected(YamlError{line, child + ": duplicate key"});
          auto value = convert(pair.second, child);
          if (!value) return value;
          // The key's line: a nested object's own node starts on the next line.
          lines[child] = line;
          out[key] = std::move(*value);
        }
        return out;
      }
    }
    return json(nullptr);
  }
};

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A rollout to start: its id ("r-?" on a dry run) and what it does.
std::string rollout_text(const json& row) {
  const std::string id = row.contains("id") && row["id"].is_string() ? row["id"].get<std::string>() : "r-?";
  return id + " " + row.value("summary", "");
}

void render_changes(const json& body) {
  const json changes = body.value("changes", json::array());
  print_table(std::cout,
              {field("ACTION", "action"), field("KIND", "kind"), field("NAME", "name"),
               Column{"FIELDS", [](const json& row) {
                        if (row.value("kind", "") == "rollout") return rollout_text(row);
                        std::string joined;
                        for (const auto& f : row.value("fields", json::array())) {
                          joined += (joined.empty() ? "" : ", ") + to_text(f);
                        }
                        return joined.empty() ? std::string("-") : joined;
                      }}},
              changes);
  std::size_t changed = 0;
  for (const auto& change : changes) changed += change.value("action", "") != "unchanged" ? 1U : 0U;
  if (body.value("dry_run", false)) {
    std::cout << "dry run: " << changed << " change(s) would be made; nothing was changed\n";
  } else if (changed == 0) {
    std::cout << "nothing to change\n";
  } else {
    std::cout << changed << " change(s) applied\n";
  }
  for (const auto& note : body.value("notes", json::array())) std::cout << "note: " << to_text(note) << '\n';
  if (!body.value("applied", false)) return;
  for (const auto& change : changes) {
    if (change.value("kind", "") != "rollout" || !change.contains("id") || !change["id"].is_string()) continue;
    const std::string group = change.value("name", "");
    std::cout << "started rollout " << to_text(change["id"]) << " of " << group << ": "
              << change.value("summary", "") << "\nfollow it: tidectl rollout status " << group << " --watch\n";
  }
}

}  // namespace

tl::expected<YamlJson, YamlError> yaml_to_json(const std::string& text) {
  try {
    const YAML::Node root = YAML::Load(text);
    Converter converter;
    auto value = converter.convert(root, "");
    if (!value) return tl::make_unexpected(value.error());
    return YamlJson{std::move(*value), std::move(converter.lines)};
  } catch (const YAML::Exception& error) {
    return tl::make_unexpected(YamlError{error.mark.is_null() ? 0 : error.mark.line + 1, error.msg});
  } catch (const std::exception& error) {
    return tl::make_unexpected(YamlError{0, error.what()});
  }
}

int line_of(const YamlJson& document, std::string path) {
  while (true) {
    if (const auto it = document.lines.find(path); it != document.lines.end()) return it->second;
    if (path.empty()) return 0;
    const auto cut = path.find_last_of(".[");
    path = cut == std::string::npos ? std::string() : path.substr(0, cut);
  }
}

void add_apply_command(CLI::App& app, Request& request) {
  static std::string file;
  static bool dry_run = false;
  static YamlJson document;
  auto* apply = app.add_subcommand("apply", "create or update launch configurations, groups and their specs from a file");
  apply->add_option("-f,--file", file, "fleet file (YAML); see docs/apply.md")->required();
  apply->add_flag("--dry-run", dry_run, "show what would change, change nothing");
  apply->callback([&request] {
    bool ok = false;
    const std::string text = read_file(file, ok);
    if (!ok) {
      std::cerr << "tidectl: cannot read " << file << '\n';
      throw CLI::RuntimeError(kExitUsage);
    }
    auto parsed = yaml_to_json(text);
    if (!parsed) {
      std::cerr << file << ":" << parsed.error().line << ": " << parsed.error().message << '\n';
      throw CLI::RuntimeError(kExitUsage);
    }
    document = std::move(*parsed);
    if (document.value.is_null()) document.value = json::object();
    request = Request{"POST", std::string("/v1/apply") + (dry_run ? "?dry_run=true" : ""), document.value,
                      render_changes, [](int status, const json& body) {
                        // 400: the file is wrong; 409: the group's state refuses it
                        // now (a rollout still running).
                        if ((status == 400 || status == 409) && body.is_object() && body.contains("field")) {
                          const std::string path = body.value("field", "");
                          std::cerr << file << ":" << line_of(document, path) << ": " << body.value("error", "refused")
                                    << '\n';
                          return status == 400 ? kExitUsage : kExitRefused;
                        }
                        std::cerr << "tidectl: " << (body.is_object() ? body.value("error", body.dump()) : body.dump())
                                  << " (HTTP " << status << ")\n";
                        if (body.is_object() && body.contains("applied_before_error")) {
                          std::cerr << "applied before the error:\n";
                          for (const auto& change : body["applied_before_error"]) {
                            std::cerr << "  " << change.value("action", "") << " " << change.value("kind", "") << " "
                                      << change.value("name", "") << '\n';
                          }
                        }
                        return status >= 500 ? kExitUnavailable : kExitRefused;
                      }};
  });
}

}  // namespace tide::tidectl
