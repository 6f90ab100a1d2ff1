// Per-group history (docs/api.md, "History"): every history.interval_ms one
// sample per group (coordinator/core/history.hpp) into the store, the minute
// rollups of each minute that ended, and a prune of what is past the
// retention once an hour. The history is a record, not state the fleet
// needs: a store failure is logged and counted, and the coordinator goes on.
#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <variant>

#include <spdlog/spdlog.h>

#include "coordinator/core/duration.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

namespace {

// Deleting a week-old hour of samples is one short transaction; more often
// would only add commits.
constexpr TimeMs kHistoryPruneIntervalMs = 3'600'000;

}  // namespace

void Server::start_history() {
  const TimeMs now = now_ms();
  prune_history(now);
  // The rollups resume after the last minute rolled up: minutes whose
  // samples were written before a crash or a stop are rolled up at the
  // first tick.
  auto latest = m_store->latest_history_ms(HistoryTable::Minutes);
  if (!latest) history_store_failed(latest.error());
  m_history_rolled_ms = latest && latest->has_value()
                            ? **latest + kHistoryRollupMs
                            : history_bucket(now - m_config.history.retention_ms, kHistoryRollupMs);
  spdlog::info("history: a sample of every group every {}, kept {}",
               typed_duration(m_config.history.interval_ms),
               typed_duration(m_config.history.retention_ms));
}

void Server::sample_history() {
  if (m_stopping) return;
  const TimeMs now = now_ms();
  const std::vector<const ScalingGroup*> groups = m_fleet->groups();
  std::vector<HistorySource> sources;
  sources.reserve(groups.size());
  std::unordered_map<std::string_view, std::size_t> index;  // group name -> sources[k]
  for (const ScalingGroup* group : groups) {
    index.emplace(group->name, sources.size());
    sources.push_back(HistorySource{group, m_fleet->instances_of(group->name), {}});
  }
  for (const auto& [key, policy] : m_specs.policies) {
    const auto at = index.find(key.first);
    if (at == index.end()) continue;
    std::visit(
        [&](const auto& p) {
          sources[at->second].policy_metrics.push_back(PolicyMetric{p.metric, p.query});
        },
        policy);
  }
  // A query is asked once per prometheus.interval_ms: its last value is
  // found within that interval and a sample's.
  const HistoryWindows spans{
      kHistoryIntervalMs,
      std::max<std::int64_t>(kHistoryIntervalMs,
                             std::int64_t{m_config.prometheus.interval_ms} + kHistoryIntervalMs)};
  const std::vector<GroupHistorySample> samples = sample_groups(sources, m_metrics, now, spans);
  if (!samples.empty()) {
    if (auto inserted = m_store->insert_history(HistoryTable::Raw, samples); !inserted) {
      history_store_failed(inserted.error());
      return;
    }
  }
  roll_up_history(now);
  if (now - m_history_pruned_ms >= kHistoryPruneIntervalMs) prune_history(now);
  if (m_history_failing) {
    spdlog::info("history: the store takes samples again");
    m_history_failing = false;
  }
}

void Server::roll_up_history(TimeMs now) {
  const TimeMs until = history_bucket(now, kHistoryRollupMs);
  if (until <= m_history_rolled_ms) return;
  auto raw = m_store->read_all_history(HistoryTable::Raw, m_history_rolled_ms, until);
  if (!raw) {
    history_store_failed(raw.error());
    return;
  }
  std::vector<GroupHistorySample> minutes;
  for (auto& [group, samples] : *raw) {
    for (HistorySample& point : roll_up_minutes(std::move(samples), m_history_rolled_ms, until)) {
      minutes.push_back(GroupHistorySample{group, std::move(point)});
    }
  }
  if (!minutes.empty()) {
    if (auto inserted = m_store->insert_history(HistoryTable::Minutes, minutes); !inserted) {
      history_store_failed(inserted.error());
      return;
    }
  }
  m_history_rolled_ms = until;
}

void Server::prune_history(TimeMs now) {
  m_history_pruned_ms = now;
  const TimeMs before = now - m_config.history.retention_ms;
  auto pruned = m_store->prune_history(before);
  if (!pruned) {
    history_store_failed(pruned.error());
    return;
  }
  if (*pruned > 0) {
    spdlog::debug("history: {} rows older than {} pruned", *pruned,
                  typed_duration(m_config.history.retention_ms));
  }
}

void Server::history_store_failed(const store::StoreError& error) {
  ++m_counters.store_failures;
  if (!m_history_failing) {
    spdlog::warn("history: {}; groups' samples are lost until the store works again",
                 error.message);
  }
  m_history_failing = true;
}

tl::expected<std::map<std::string, std::vector<HistorySample>>, store::StoreError>
Server::read_history(const std::string& group, const HistoryRange& range,
                     const MetricSelection& metrics) {
  std::map<std::string, std::vector<HistorySample>> rows;
  const auto append = [&](const std::string& name, std::vector<HistorySample>& part) {
    std::vector<HistorySample>& into = rows[name];
    if (into.empty()) {
      into = std::move(part);
    } else {
      into.insert(into.end(), std::make_move_iterator(part.begin()),
                  std::make_move_iterator(part.end()));
    }
  };
  // The reads follow each other in time, so each group's rows stay sorted.
  for (const HistoryRead& read : history_reads(range, m_history_rolled_ms)) {
    if (group.empty()) {
      auto part = m_store->read_all_history(read.table, read.from_ms, read.to_ms, metrics);
      if (!part) return tl::make_unexpected(part.error());
      for (auto& [name, samples] : *part) append(name, samples);
    } else {
      auto part = m_store->read_history(read.table, group, read.from_ms, read.to_ms, metrics);
      if (!part) return tl::make_unexpected(part.error());
      append(group, *part);
    }
  }
  return rows;
}

}  // namespace tide::coordinator
