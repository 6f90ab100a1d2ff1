#include "coordinator/io/haproxy/runtime_text.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <optional>

namespace tide::haproxy {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (auto line : split(s, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

tl::expected<std::vector<ServerState>, std::string> parse_servers_state(std::string_view text) {
  auto lines = split_lines(text);
  if (lines.empty()) return tl::make_unexpected(std::string("empty answer"));
  if (lines[0] != "1") {
    return tl::make_unexpected("unexpected answer (not servers state format 1): " + std::string(lines[0].substr(0, 120)));
  }
  if (lines.size() < 2 || lines[1].substr(0, 2) != "# ") {
    return tl::make_unexpected(std::string("missing header line"));
  }
  std::map<std::string_view, std::size_t> col;
  auto names = split_spaces(lines[1].substr(2));
  for (std::size_t i = 0; i < names.size(); ++i) col[names[i]] = i;
  for (auto need : {"be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_port"}) {
    if (!col.contains(need)) return tl::make_unexpected("header lacks column " + std::string(need));
  }
  std::vector<ServerState> out;
  for (std::size_t n = 2; n < lines.size(); ++n) {
    auto f = split_spaces(lines[n]);
    if (f.size() < names.size()) {
      return tl::make_unexpected("short row " + std::to_string(n + 1) + ": " + std::string(lines[n].substr(0, 120)));
    }
    ServerState s;
    s.backend = f[col["be_name"]];
    s.server = f[col["srv_name"]];
    s.address = f[col["srv_addr"]];
    auto id = to_number<std::uint32_t>(f[col["srv_id"]]);
    auto op = to_number<std::uint32_t>(f[col["srv_op_state"]]);
    auto admin = to_number<std::uint32_t>(f[col["srv_admin_state"]]);
    auto port = to_number<std::uint16_t>(f[col["srv_port"]]);
    if (!id || !op || !admin || !port) {
      return tl::make_unexpected("bad number in row " + std::to_string(n + 1) + ": " + std::string(lines[n].substr(0, 120)));
    }
    s.server_id = *id;
    s.op_state = *op;
    s.admin_state = *admin;
    s.port = *port;
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// The numeric fields of a `show stat` row, by header name.
struct StatNumber {
  std::string_view name;
  std::uint64_t StatRow::*member;
  bool required;
};

constexpr StatNumber kStatNumbers[] = {
    {"qcur", &StatRow::qcur, true},           {"scur", &StatRow::scur, true},
    {"stot", &StatRow::stot, false},          {"req_tot", &StatRow::req_tot, false},
    {"rate", &StatRow::rate, false},          {"hrsp_2xx", &StatRow::hrsp_2xx, false},
    {"hrsp_4xx", &StatRow::hrsp_4xx, false},  {"hrsp_5xx", &StatRow::hrsp_5xx, false},
    {"econ", &StatRow::econ, false},          {"eresp", &StatRow::eresp, false},
    {"wretr", &StatRow::wretr, false},        {"wredis", &StatRow::wredis, false},
    {"qtime", &StatRow::qtime_ms, false},     {"ctime", &StatRow::ctime_ms, false},
    {"rtime", &StatRow::rtime_ms, false},     {"ttime", &StatRow::ttime_ms, false},
};

}  // namespace

tl::expected<std::vector<StatRow>, std::string> parse_show_stat(std::string_view text) {
  auto lines = split_lines(text);
  if (lines.empty() || lines[0].substr(0, 2) != "# ") {
    return tl::make_unexpected("not show stat CSV: " + std::string(lines.empty() ? "" : lines[0].substr(0, 120)));
  }
  auto names = split(lines[0].substr(2), ',');
  std::map<std::string_view, std::size_t> col;
  for (std::size_t i = 0; i < names.size(); ++i) col.emplace(names[i], i);
  for (auto need : {"pxname", "svname", "status"}) {
    if (!col.contains(need)) return tl::make_unexpected("header lacks column " + std::string(need));
  }
  // Where each numeric field is; nullopt: not in this HAProxy's header.
  std::optional<std::size_t> number_col[std::size(kStatNumbers)];
  for (std::size_t k = 0; k < std::size(kStatNumbers); ++k) {
    auto it = col.find(kStatNumbers[k].name);
    if (it != col.end()) {
      number_col[k] = it->second;
    } else if (kStatNumbers[k].required) {
      return tl::make_unexpected("header lacks column " + std::string(kStatNumbers[k].name));
    }
  }
  const std::size_t px = col["pxname"];
  const std::size_t sv = col["svname"];
  const std::size_t st = col["status"];
  std::size_t needed = std::max({px, sv, st}) + 1;
  for (const auto& c : number_col) {
    if (c) needed = std::max(needed, *c + 1);
  }
  const auto addr_col = col.find("addr");
  std::vector<StatRow> out;
  for (std::size_t n = 1; n < lines.size(); ++n) {
    auto f = split(lines[n], ',');
    if (f.size() < needed) return tl::make_unexpected("short row " + std::to_string(n + 1));
    StatRow r;
    r.proxy = f[px];
    r.server = f[sv];
    r.status = f[st];
    for (std::size_t k = 0; k < std::size(kStatNumbers); ++k) {
      if (!number_col[k]) continue;
      const std::string_view v = f[*number_col[k]];
      if (v.empty()) continue;  // HAProxy leaves fields empty where they do not apply
      auto value = to_number<std::uint64_t>(v);
      if (!value) {
        return tl::make_unexpected("bad number in row " + std::to_string(n + 1) + ", column " +
                                   std::string(kStatNumbers[k].name) + ": '" + std::string(v.substr(0, 40)) + "'");
      }
      r.*kStatNumbers[k].member = *value;
    }
    if (addr_col != col.end() && addr_col->second < f.size()) r.addr = f[addr_col->second];
    out.push_back(std::move(r));
  }
  return out;
}

bool is_error_answer(std::string_view command, std::string_view answer) {
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == ' ')) answer.remove_suffix(1);
  if (answer.empty()) return false;
  if (command.find(" addr ") != std::string_view::npos) {
    // Success reads "IP changed from ..." / "no need to change the addr, port changed ...".
    return answer.find("changed from") == std::string_view::npos &&
           answer.find("no need to change") == std::string_view::npos;
  }
  return true;
}

}  // namespace tide::haproxy
