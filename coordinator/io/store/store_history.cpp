// Store: per-group history (schema v7) — a row per group and sample in
// group_history, a row per group and minute in group_history_minutes.
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "coordinator/io/store/store.hpp"

namespace tide::coordinator::store {

namespace {

using Kind = StoreError::Kind;

// prepare() caches statements by the SQL literal's address, so each table
// has its own literals.
struct HistorySql {
  const char* label;
  const char* insert;
  const char* range;
  const char* all;
  const char* prune;
  const char* latest;
};

#define TIDE_HISTORY_COLUMNS \
  "group_name, t_ms, min_size, max_size, desired, in_service, pending, healthy, in_lb, metrics"

constexpr HistorySql kRawSql{
    "history",
    "INSERT OR REPLACE INTO group_history (" TIDE_HISTORY_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    "SELECT " TIDE_HISTORY_COLUMNS
    " FROM group_history WHERE group_name = ?1 AND t_ms >= ?2 AND t_ms < ?3 "
    "ORDER BY t_ms",
    // Through scaling_groups: one primary-key range per group, never a scan
    // of the whole table.
    "SELECT h.group_name, h.t_ms, h.min_size, h.max_size, h.desired, h.in_service, h.pending, "
    "h.healthy, h.in_lb, "
    "h.metrics FROM scaling_groups g JOIN group_history h ON h.group_name = g.name "
    "WHERE h.t_ms >= ?1 AND h.t_ms < ?2 ORDER BY g.name, h.t_ms",
    "DELETE FROM group_history WHERE group_name IN (SELECT name FROM scaling_groups) AND t_ms < ?1",
    "SELECT max((SELECT max(t_ms) FROM group_history h WHERE h.group_name = g.name)) FROM "
    "scaling_groups g"};
constexpr HistorySql kMinutesSql{
    "history minutes",
    "INSERT OR REPLACE INTO group_history_minutes (" TIDE_HISTORY_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    "SELECT " TIDE_HISTORY_COLUMNS
    " FROM group_history_minutes WHERE group_name = ?1 AND t_ms >= ?2 AND t_ms < ?3 "
    "ORDER BY t_ms",
    "SELECT h.group_name, h.t_ms, h.min_size, h.max_size, h.desired, h.in_service, h.pending, "
    "h.healthy, h.in_lb, "
    "h.metrics FROM scaling_groups g JOIN group_history_minutes h ON h.group_name = g.name "
    "WHERE h.t_ms >= ?1 AND h.t_ms < ?2 ORDER BY g.name, h.t_ms",
    "DELETE FROM group_history_minutes WHERE group_name IN (SELECT name FROM scaling_groups) AND "
    "t_ms < ?1",
    "SELECT max((SELECT max(t_ms) FROM group_history_minutes h WHERE h.group_name = g.name)) "
    "FROM scaling_groups g"};

#undef TIDE_HISTORY_COLUMNS

const HistorySql& sql_for(HistoryTable table) {
  switch (table) {
    case HistoryTable::Raw:
      return kRawSql;
    case HistoryTable::Minutes:
      return kMinutesSql;
  }
  return kRawSql;
}

// A metric name can go into the text unquoted: policy and agent metric
// names are ids of [A-Za-z0-9._:-], and anything else is left out rather
// than written so that it cannot be read back.
bool storable_name(std::string_view name) {
  return !name.empty() && name.find_first_of(" =") == std::string_view::npos;
}

// "cpu=41.5 requests_per_instance=12.25", or "cpu=41.5/6" for the mean of
// six samples. Values are kept to a float's precision (about 7 significant
// digits, all a chart can show) in the shortest form that reads back to the
// same float: an average of doubles would take 17 digits, and a group has a
// dozen metrics in every row. Values beyond a float's range keep the double.
std::string encode_metrics(const std::map<std::string, HistoryValue>& metrics) {
  std::string text;
  char number[32];
  for (const auto& [name, value] : metrics) {
    if (!storable_name(name) || value.samples == 0) continue;
    if (!text.empty()) text += ' ';
    text += name;
    text += '=';
    const bool fits_float =
        std::abs(value.mean) <= static_cast<double>(std::numeric_limits<float>::max());
    const auto [end, error] =
        fits_float ? std::to_chars(number, number + sizeof number, static_cast<float>(value.mean))
                   : std::to_chars(number, number + sizeof number, value.mean);
    text.append(number, error == std::errc() ? end : number);
    if (value.samples != 1) {
      text += '/';
      text += std::to_string(value.samples);
    }
  }
  return text;
}

// The inverse of encode_metrics(), keeping what `keep` selects; false for
// text it cannot have written.
bool decode_metrics(std::string_view text, const MetricSelection& keep,
                    std::map<std::string, HistoryValue>& out) {
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    const std::string_view item = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    const std::size_t equals = item.find('=');
    if (equals == 0 || equals == std::string_view::npos) return false;
    const std::string_view name = item.substr(0, equals);
    // A value left out is not read at all: most of a row's cost.
    if (!keep.keeps(name)) continue;
    const char* const end = item.data() + item.size();
    HistoryValue value;
    const auto [after_mean, mean_error] =
        std::from_chars(item.data() + equals + 1, end, value.mean);
    if (mean_error != std::errc()) return false;
    if (after_mean != end) {
      if (*after_mean != '/') return false;
      const auto [after_count, count_error] = std::from_chars(after_mean + 1, end, value.samples);
      if (count_error != std::errc() || after_count != end || value.samples == 0) return false;
    }
    // Written in name order: each goes at the end, without a search.
    out.insert_or_assign(out.end(), std::string(name), value);
  }
  return true;
}

// A column that must fit a capacity field.
bool read_count(const Statement& s, int column, std::uint32_t& out) {
  const std::int64_t value = s.column_int(column);
  if (value < 0 || value > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(value);
  return true;
}

// The row the statement stands on, from column 1 (t_ms) on; column 0 is the group.
Result<HistorySample> read_row(const Statement& s, const std::string& operation,
                               const MetricSelection& metrics) {
  HistorySample sample;
  sample.t_ms = s.column_int(1);
  std::uint32_t* const counts[] = {&sample.min,        &sample.max,     &sample.desired,
                                   &sample.in_service, &sample.pending, &sample.healthy,
                                   &sample.in_lb};
  for (int k = 0; k < 7; ++k) {
    if (!read_count(s, 2 + k, *counts[k])) {
      return store_error(Kind::Invalid, operation + ": a count out of range at t_ms " +
                                            std::to_string(sample.t_ms));
    }
  }
  if (!decode_metrics(s.column_text(9), metrics, sample.metrics)) {
    return store_error(Kind::Invalid,
                       operation + ": unreadable metrics at t_ms " + std::to_string(sample.t_ms));
  }
  return sample;
}

}  // namespace

Result<void> Store::insert_history(HistoryTable table,
                                   std::span<const GroupHistorySample> samples) {
  const HistorySql& sql = sql_for(table);
  const std::string operation =
      std::string("insert ") + sql.label + " (" + std::to_string(samples.size()) + " rows)";
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  for (const GroupHistorySample& row : samples) {
    auto s = m_db.prepare(operation, sql.insert);
    if (!s) return tl::unexpected(s.error());
    const HistorySample& sample = row.sample;
    (*s)->bind(1, row.group);
    (*s)->bind(2, sample.t_ms);
    int index = 3;
    for (const std::uint32_t count : {sample.min, sample.max, sample.desired, sample.in_service,
                                      sample.pending, sample.healthy, sample.in_lb}) {
      (*s)->bind(index++, static_cast<std::int64_t>(count));
    }
    (*s)->bind(10, encode_metrics(sample.metrics));
    if (auto r = m_db.run(operation + ": group " + row.group, **s); !r) return r;
  }
  return tx->commit();
}

Result<std::vector<HistorySample>> Store::read_history(HistoryTable table, std::string_view group,
                                                       TimeMs from_ms, TimeMs to_ms,
                                                       const MetricSelection& metrics) {
  const HistorySql& sql = sql_for(table);
  const std::string operation = std::string("read ") + sql.label + " of " + std::string(group);
  auto s = m_db.prepare(operation, sql.range);
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, group);
  (*s)->bind(2, from_ms);
  (*s)->bind(3, to_ms);
  std::vector<HistorySample> out;
  while (true) {
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    auto sample = read_row(**s, operation, metrics);
    if (!sample) return tl::unexpected(sample.error());
    out.push_back(std::move(*sample));
  }
  return out;
}

Result<std::map<std::string, std::vector<HistorySample>>> Store::read_all_history(
    HistoryTable table, TimeMs from_ms, TimeMs to_ms, const MetricSelection& metrics) {
  const HistorySql& sql = sql_for(table);
  const std::string operation = std::string("read ") + sql.label + " of all groups";
  auto s = m_db.prepare(operation, sql.all);
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, from_ms);
  (*s)->bind(2, to_ms);
  std::map<std::string, std::vector<HistorySample>> out;
  std::vector<HistorySample>* current = nullptr;
  std::string current_group;
  while (true) {
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    std::string group = (*s)->column_text(0);
    if (current == nullptr || group != current_group) {
      current_group = group;
      current = &out[std::move(group)];
    }
    auto sample = read_row(**s, operation, metrics);
    if (!sample) return tl::unexpected(sample.error());
    current->push_back(std::move(*sample));
  }
  return out;
}

Result<std::int64_t> Store::prune_history(TimeMs before_ms) {
  const std::string operation = "prune history before t_ms " + std::to_string(before_ms);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  std::int64_t deleted = 0;
  for (const HistorySql* sql : {&kRawSql, &kMinutesSql}) {
    auto s = m_db.prepare(operation, sql->prune);
    if (!s) return tl::unexpected(s.error());
    (*s)->bind(1, before_ms);
    if (auto r = m_db.run(operation, **s); !r) return tl::unexpected(r.error());
    deleted += m_db.changes();
  }
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return deleted;
}

Result<std::optional<TimeMs>> Store::latest_history_ms(HistoryTable table) {
  const HistorySql& sql = sql_for(table);
  const std::string operation = std::string("read the latest ") + sql.label + " time";
  auto s = m_db.prepare(operation, sql.latest);
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row || (*s)->column_is_null(0)) return std::optional<TimeMs>{};
  return std::optional<TimeMs>{(*s)->column_int(0)};
}

}  // namespace tide::coordinator::store
