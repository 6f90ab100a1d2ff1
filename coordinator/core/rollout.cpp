#include "coordinator/core/rollout.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "coordinator/core/enum_names.hpp"

namespace tide::coordinator {

namespace {

using detail::name_of;
using detail::value_of;

constexpr detail::Names<RolloutState, 7> kStateNames{{
    {RolloutState::Running, "running"},
    {RolloutState::Paused, "paused"},
    {RolloutState::RollingBack, "rolling_back"},
    {RolloutState::Succeeded, "succeeded"},
    {RolloutState::RolledBack, "rolled_back"},
    {RolloutState::Cancelled, "cancelled"},
    {RolloutState::Failed, "failed"},
}};

constexpr detail::Names<FailureAction, 3> kFailureActionNames{{
    {FailureAction::Rollback, "rollback"},
    {FailureAction::Pause, "pause"},
    {FailureAction::Cancel, "cancel"},
}};

constexpr detail::Names<RolloutPhase, 2> kPhaseNames{{
    {RolloutPhase::Canary, "canary"},
    {RolloutPhase::Batch, "batch"},
}};

constexpr detail::Names<RolloutNote::Kind, 9> kNoteNames{{
    {RolloutNote::Kind::CanaryStarted, "canary_started"},
    {RolloutNote::Kind::CanaryPassed, "canary_passed"},
    {RolloutNote::Kind::BatchStarted, "batch_started"},
    {RolloutNote::Kind::BatchDone, "batch_done"},
    {RolloutNote::Kind::Paused, "paused"},
    {RolloutNote::Kind::Failed, "failed"},
    {RolloutNote::Kind::RollbackStarted, "rollback_started"},
    {RolloutNote::Kind::Succeeded, "succeeded"},
    {RolloutNote::Kind::RolledBack, "rolled_back"},
}};

ModelError error(std::string message, std::string field = {}) { return ModelError{std::move(message), std::move(field)}; }

// A group snapshot sorted into what advance() decides on.
struct Tally {
  std::uint32_t counting = 0;
  std::uint32_t capacity = 0;  // serving old instances + serving, baked target instances
  bool target_pending = false; // a counting target instance not yet serving for the bake time
  std::vector<const RolloutMember*> old;  // counting, replaceable, not the target version
  std::unordered_map<std::string_view, const RolloutMember*> by_id;
};

bool baked(const RolloutMember& m, std::int64_t bake_ms, TimeMs now_ms) {
  return m.serving && now_ms - m.serving_since_ms >= bake_ms;
}

Tally tally(const RolloutView& view, std::int64_t bake_ms, TimeMs now_ms) {
  Tally t;
  for (const auto& m : view.members) {
    t.by_id.emplace(m.id, &m);
    if (!m.counting) continue;
    ++t.counting;
    if (m.target) {
      if (baked(m, bake_ms, now_ms)) {
        ++t.capacity;
      } else {
        t.target_pending = true;
      }
    } else {
      if (m.serving) ++t.capacity;
      if (m.replaceable) t.old.push_back(&m);
    }
  }
  return t;
}

bool alive(const Tally& t, const std::string& id) {
  const auto it = t.by_id.find(id);
  return it != t.by_id.end() && it->second->counting;
}

void set_state(Rollout& r, RolloutState state, TimeMs now_ms) {
  r.state = state;
  r.updated_ms = now_ms;
  if (is_terminal(state)) r.finished_ms = now_ms;
}

void note(RolloutDecision& d, RolloutNote::Kind kind, const Rollout& r, std::string message,
          std::vector<std::string> instances = {}) {
  d.notes.push_back(RolloutNote{kind, r.batch, std::move(instances), std::move(message)});
  d.changed = true;
}

// Starts going back to `from`, batch by batch with the same gating.
void start_rollback(Rollout& r, std::string reason, TimeMs now_ms) {
  r.state = RolloutState::RollingBack;
  r.phase = RolloutPhase::Batch;
  r.batch = 0;
  r.batch_old.clear();
  r.canary.clear();
  r.batch_started_ms = now_ms;
  r.replaced = 0;
  r.old_at_start = 0;
  r.failures_in_batch = 0;
  r.between_batches = false;
  r.reason = std::move(reason);
  r.updated_ms = now_ms;
}

void fail(Rollout& r, RolloutDecision& d, const std::string& why, TimeMs now_ms) {
  note(d, RolloutNote::Kind::Failed, r, why);
  if (r.state == RolloutState::RollingBack) {
    r.reason = "the rollback failed: " + why;
    set_state(r, RolloutState::Failed, now_ms);
    return;
  }
  switch (r.strategy.on_failure) {
    case FailureAction::Rollback:
      start_rollback(r, why, now_ms);
      note(d, RolloutNote::Kind::RollbackStarted, r, "rolling back to " + r.from_launch_configuration + ":" +
                                                        std::to_string(r.from_version) + ": " + why);
      break;
    case FailureAction::Pause:
      r.reason = why;
      set_state(r, RolloutState::Paused, now_ms);
      note(d, RolloutNote::Kind::Paused, r, "paused after a failure: " + why);
      break;
    case FailureAction::Cancel:
      r.reason = why;
      set_state(r, RolloutState::Failed, now_ms);
      break;
  }
}

// While paused or stopped, the instances above desired that exist stay
// (a scale-in would take old instances first and so keep replacing).
std::uint32_t holding_surge(const Tally& t, std::uint32_t desired, std::uint32_t max_surge) {
  return t.counting > desired ? std::min(t.counting - desired, max_surge) : 0;
}

// The old instances a batch replaces: those that do not serve first (they
// cost no capacity), then the oldest.
std::vector<std::string> pick_batch(std::vector<const RolloutMember*> old, std::uint32_t count) {
  std::sort(old.begin(), old.end(), [](const RolloutMember* a, const RolloutMember* b) {
    if (a->serving != b->serving) return !a->serving;
    if (a->created_ms != b->created_ms) return a->created_ms < b->created_ms;
    return a->id < b->id;
  });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < old.size() && out.size() < count; ++i) out.push_back(old[i]->id);
  return out;
}

}  // namespace

// ---- amounts ----------------------------------------------------------------

std::optional<Amount> parse_amount(std::string_view text) {
  Amount amount;
  if (!text.empty() && text.back() == '%') {
    amount.percent = true;
    text.remove_suffix(1);
  }
  if (text.empty()) return std::nullopt;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), amount.value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  if (amount.percent && amount.value > 100) return std::nullopt;
  return amount;
}

std::string to_string(const Amount& amount) {
  return std::to_string(amount.value) + (amount.percent ? "%" : "");
}

std::uint32_t resolve_up(const Amount& amount, std::uint32_t desired) {
  if (!amount.percent) return amount.value;
  const std::uint64_t scaled = static_cast<std::uint64_t>(amount.value) * desired;
  return static_cast<std::uint32_t>((scaled + 99) / 100);
}

// ---- names ------------------------------------------------------------------

std::string_view to_string(RolloutState state) { return name_of(kStateNames, state); }
std::string_view to_string(FailureAction action) { return name_of(kFailureActionNames, action); }
std::string_view to_string(RolloutPhase phase) { return name_of(kPhaseNames, phase); }
std::string_view to_string(RolloutNote::Kind kind) { return name_of(kNoteNames, kind); }
std::optional<FailureAction> parse_failure_action(std::string_view text) {
  return value_of(kFailureActionNames, text);
}

bool is_terminal(RolloutState state) {
  return state == RolloutState::Succeeded || state == RolloutState::RolledBack ||
         state == RolloutState::Cancelled || state == RolloutState::Failed;
}

// ---- validation -------------------------------------------------------------

tl::expected<void, ModelError> validate(const RolloutStrategy& s) {
  if (s.batch.value == 0) return tl::make_unexpected(error("batch must be at least 1 (or 1%)", "batch"));
  if (s.batch.percent && s.batch.value > 100) return tl::make_unexpected(error("batch above 100%", "batch"));
  if (!s.batch.percent && s.batch.value > 10'000) return tl::make_unexpected(error("batch above 10000", "batch"));
  if (!s.min_healthy.percent && s.min_healthy.value > 10'000) {
    return tl::make_unexpected(error("min_healthy above 10000", "min_healthy"));
  }
  if (s.max_surge.percent && s.max_surge.value > 100) {
    return tl::make_unexpected(error("max_surge above 100%", "max_surge"));
  }
  if (!s.max_surge.percent && s.max_surge.value > 1000) {
    return tl::make_unexpected(error("max_surge above 1000", "max_surge"));
  }
  if (s.min_healthy.percent && s.min_healthy.value > 100) {
    return tl::make_unexpected(error("min_healthy above 100%", "min_healthy"));
  }
  if (s.bake_ms < 0 || s.bake_ms > 24LL * 3'600'000) {
    return tl::make_unexpected(error("bake_ms must be within 0..86400000", "bake_ms"));
  }
  if (s.batch_deadline_ms < 1'000 || s.batch_deadline_ms > 48LL * 3'600'000) {
    return tl::make_unexpected(error("batch_deadline_ms must be within 1000..172800000", "batch_deadline_ms"));
  }
  if (s.batch_deadline_ms <= s.bake_ms) {
    return tl::make_unexpected(
        error("batch_deadline_ms " + std::to_string(s.batch_deadline_ms) + " must be longer than bake_ms " +
                  std::to_string(s.bake_ms) + ": no batch could finish",
              "batch_deadline_ms"));
  }
  for (std::size_t i = 0; i < s.pause_at_percent.size(); ++i) {
    const auto p = s.pause_at_percent[i];
    if (p == 0 || p >= 100) {
      return tl::make_unexpected(error("pause_at_percent values must be within 1..99", "pause_at_percent"));
    }
    if (i > 0 && p <= s.pause_at_percent[i - 1]) {
      return tl::make_unexpected(error("pause_at_percent must be increasing", "pause_at_percent"));
    }
  }
  if (s.canary.count > 0) {
    if (s.canary.count > 100) return tl::make_unexpected(error("canary count above 100", "canary.count"));
    if (s.canary.bake_ms < 1'000 || s.canary.bake_ms > 24LL * 3'600'000) {
      return tl::make_unexpected(error("canary bake_ms must be within 1000..86400000", "canary.bake_ms"));
    }
    if (s.batch_deadline_ms <= s.canary.bake_ms) {
      return tl::make_unexpected(error("batch_deadline_ms must be longer than the canary's bake_ms",
                                       "batch_deadline_ms"));
    }
    if (!(s.canary.max_error_share_increase >= 0.0 && s.canary.max_error_share_increase <= 1.0)) {
      return tl::make_unexpected(error("canary max_error_share_increase must be within 0..1",
                                       "canary.max_error_share_increase"));
    }
    if (!(s.canary.max_latency_ratio >= 1.0 && s.canary.max_latency_ratio <= 1000.0)) {
      return tl::make_unexpected(error("canary max_latency_ratio must be within 1..1000", "canary.max_latency_ratio"));
    }
    if (s.canary.latency_floor_ms < 0) {
      return tl::make_unexpected(error("canary latency_floor_ms must not be negative", "canary.latency_floor_ms"));
    }
  }
  const bool surge_zero = s.max_surge.value == 0;
  const bool floor_full = s.min_healthy.percent && s.min_healthy.value == 100;
  if (surge_zero && floor_full) {
    return tl::make_unexpected(error("max_surge 0 with min_healthy 100% can never replace an instance", "max_surge"));
  }
  return {};
}

// ---- canary -----------------------------------------------------------------

CanaryVerdict canary_verdict(const CanarySpec& spec, const TrafficFigures& canary, const TrafficFigures& baseline) {
  CanaryVerdict v;
  if (canary.requests < spec.min_requests) {
    v.reason = "the canary served " + std::to_string(canary.requests) + " of the " +
               std::to_string(spec.min_requests) + " requests it is judged on";
    return v;
  }
  const auto share = [](const TrafficFigures& f) {
    return f.requests == 0 ? 0.0
                           : static_cast<double>(f.errors_5xx + f.connection_errors) / static_cast<double>(f.requests);
  };
  const double canary_share = share(canary);
  const double baseline_share = share(baseline);
  char text[256];
  std::snprintf(text, sizeof text,
                "canary: %llu requests, %.2f%% errors, %.1f ms mean; old version: %llu requests, %.2f%% errors, "
                "%.1f ms mean",
                static_cast<unsigned long long>(canary.requests), 100.0 * canary_share, canary.mean_response_ms,
                static_cast<unsigned long long>(baseline.requests), 100.0 * baseline_share,
                baseline.mean_response_ms);
  v.reason = text;
  if (canary_share - baseline_share > spec.max_error_share_increase) {
    v.outcome = CanaryVerdict::Outcome::Fail;
    v.reason = "error share above the old version's: " + v.reason;
    return v;
  }
  if (baseline.requests > 0 && canary.mean_response_ms > static_cast<double>(spec.latency_floor_ms) &&
      canary.mean_response_ms > spec.max_latency_ratio * baseline.mean_response_ms) {
    v.outcome = CanaryVerdict::Outcome::Fail;
    v.reason = "response time above the old version's: " + v.reason;
    return v;
  }
  v.outcome = CanaryVerdict::Outcome::Pass;
  return v;
}

// ---- the rollout ------------------------------------------------------------

std::string target_launch_configuration(const Rollout& r) {
  return r.state == RolloutState::RollingBack || r.state == RolloutState::RolledBack ? r.from_launch_configuration
                                                                                     : r.to_launch_configuration;
}

std::uint32_t target_version(const Rollout& r) {
  return r.state == RolloutState::RollingBack || r.state == RolloutState::RolledBack ? r.from_version
                                                                                     : r.to_version;
}

Rollout new_rollout(std::string id, const ScalingGroup& group, std::string to_launch_configuration,
                    std::uint32_t to_version, RolloutStrategy strategy, TimeMs now_ms) {
  Rollout r;
  r.id = std::move(id);
  r.group = group.name;
  r.from_launch_configuration = group.launch_configuration_id;
  r.from_version = group.launch_configuration_version;
  r.to_launch_configuration = std::move(to_launch_configuration);
  r.to_version = to_version;
  std::sort(strategy.pause_at_percent.begin(), strategy.pause_at_percent.end());
  r.strategy = std::move(strategy);
  r.state = RolloutState::Running;
  r.phase = RolloutPhase::Batch;
  r.batch_started_ms = now_ms;
  r.created_ms = now_ms;
  r.updated_ms = now_ms;
  return r;
}

void note_target_failure(Rollout& r, std::string_view /*instance_id*/, TimeMs now_ms) {
  if (r.state != RolloutState::Running && r.state != RolloutState::RollingBack) return;
  ++r.failures_in_batch;
  r.updated_ms = now_ms;
}

RolloutDecision advance(Rollout& r, const RolloutView& view, TimeMs now_ms,
                        const std::optional<std::pair<TrafficFigures, TrafficFigures>>& canary_figures) {
  RolloutDecision d;
  const RolloutStrategy& s = r.strategy;
  const std::uint32_t desired = view.desired;
  const std::uint32_t floor = std::min(desired, resolve_up(s.min_healthy, desired));
  std::uint32_t max_surge = resolve_up(s.max_surge, desired);
  // Neither surge nor unavailability at this size (a count floor equal to
  // desired, a 0 % surge of a small group): surge by one rather than stall.
  if (max_surge == 0 && floor >= desired) max_surge = 1;

  const Tally t = tally(view, s.bake_ms, now_ms);
  if (r.state == RolloutState::Paused) {
    d.surge = holding_surge(t, desired, std::max(max_surge, s.canary.count));
    return d;
  }
  if (is_terminal(r.state)) return d;

  // ---- the canary step ----
  if (r.state == RolloutState::Running && r.batch == 0 && s.canary.count > 0 && !t.old.empty()) {
    if (r.phase != RolloutPhase::Canary) {
      r.phase = RolloutPhase::Canary;
      r.batch_started_ms = now_ms;
      r.failures_in_batch = 0;
      r.old_at_start = static_cast<std::uint32_t>(t.old.size());
      r.updated_ms = now_ms;
      note(d, RolloutNote::Kind::CanaryStarted, r,
           "canary: " + std::to_string(s.canary.count) + " instance(s) of " + r.to_launch_configuration + ":" +
               std::to_string(r.to_version) + " beside the old version for " + duration_text(s.canary.bake_ms));
    }
    const std::uint32_t size = std::min<std::uint32_t>(s.canary.count, static_cast<std::uint32_t>(t.old.size()));
    // The canary: target instances launched since the step started.
    for (const auto& m : view.members) {
      if (r.canary.size() >= size) break;
      if (m.counting && m.target && m.created_ms >= r.batch_started_ms &&
          std::find(r.canary.begin(), r.canary.end(), m.id) == r.canary.end()) {
        r.canary.push_back(m.id);
        d.changed = true;
      }
    }
    if (r.failures_in_batch > 0) {
      fail(r, d, "a canary instance failed before it proved itself", now_ms);
      d.surge = 0;
      return d;
    }
    std::uint32_t serving = 0;
    TimeMs last_started = 0;
    for (const auto& id : r.canary) {
      const auto it = t.by_id.find(id);
      if (it == t.by_id.end() || !it->second->counting) continue;
      if (it->second->serving) {
        ++serving;
        last_started = std::max(last_started, it->second->serving_since_ms);
      }
    }
    const bool baked_now = serving == size && now_ms - last_started >= s.canary.bake_ms;
    const bool past_deadline = now_ms - r.batch_started_ms > s.batch_deadline_ms;
    if (serving == size && !baked_now && canary_figures) {
      // A canary that is already judged worse fails at once: every request
      // it serves until the bake time ends could fail too.
      const CanaryVerdict early = canary_verdict(s.canary, canary_figures->first, canary_figures->second);
      if (early.outcome == CanaryVerdict::Outcome::Fail) {
        fail(r, d, "the canary failed: " + early.reason, now_ms);
        d.surge = 0;
        return d;
      }
    }
    if (baked_now) {
      std::string passed;
      if (!canary_figures) {
        passed = "ready and healthy for " + duration_text(s.canary.bake_ms) + " (no load-balancer figures to compare)";
      } else {
        const CanaryVerdict verdict = canary_verdict(s.canary, canary_figures->first, canary_figures->second);
        if (verdict.outcome == CanaryVerdict::Outcome::Fail) {
          fail(r, d, "the canary failed: " + verdict.reason, now_ms);
          d.surge = 0;
          return d;
        }
        if (verdict.outcome == CanaryVerdict::Outcome::Pass) {
          passed = verdict.reason;
        } else if (past_deadline) {
          passed = "judged on readiness and health only: " + verdict.reason;
        }
      }
      if (!passed.empty()) {
        note(d, RolloutNote::Kind::CanaryPassed, r, passed, r.canary);
        r.phase = RolloutPhase::Batch;
        r.updated_ms = now_ms;
        // Falls through to the first batch, which retires as many old
        // instances as the canary has.
      } else {
        d.surge = size;
        return d;
      }
    } else if (past_deadline) {
      fail(r, d,
           "the canary was not ready and healthy within " + duration_text(s.batch_deadline_ms) + " (" +
               std::to_string(serving) + " of " + std::to_string(size) + " serving)",
           now_ms);
      d.surge = 0;
      return d;
    } else {
      d.surge = size;
      return d;
    }
  }

  // ---- batches ----
  const bool rolling_back = r.state == RolloutState::RollingBack;
  std::uint32_t batch_alive = 0;
  for (const auto& id : r.batch_old) batch_alive += alive(t, id) ? 1U : 0U;
  const bool batch_done = batch_alive == 0 && !t.target_pending && t.counting >= desired;
  if (r.batch == 0 || batch_done) {
    // Entering the gap between two batches: note it and look at the pause
    // points once (a resume comes back here with the flag set).
    const bool first_look = r.batch > 0 && !r.between_batches;
    if (first_look) {
      r.between_batches = true;
      note(d, RolloutNote::Kind::BatchDone, r,
           "batch " + std::to_string(r.batch) + " done: " + std::to_string(r.replaced) + " of " +
               std::to_string(r.old_at_start) + " replaced");
    }
    if (t.old.empty()) {
      if (t.target_pending || t.counting < desired) {
        // The last replacements are still starting.
        d.surge = 0;
        return d;
      }
      set_state(r, rolling_back ? RolloutState::RolledBack : RolloutState::Succeeded, now_ms);
      d.changed = true;
      note(d, rolling_back ? RolloutNote::Kind::RolledBack : RolloutNote::Kind::Succeeded, r,
           "every instance runs " + target_launch_configuration(r) + ":" + std::to_string(target_version(r)));
      return d;
    }
    if (!rolling_back && first_look) {
      std::string pause_reason;
      if (s.pause_after_first_batch && r.batch == 1) pause_reason = "after the first batch";
      if (s.pause_between_batches) pause_reason = "between batches";
      while (r.next_pause_percent < s.pause_at_percent.size() && r.old_at_start > 0 &&
             100ULL * r.replaced >= static_cast<std::uint64_t>(s.pause_at_percent[r.next_pause_percent]) * r.old_at_start) {
        pause_reason = std::to_string(s.pause_at_percent[r.next_pause_percent]) + "% replaced";
        ++r.next_pause_percent;
      }
      if (!pause_reason.empty()) {
        r.reason = pause_reason;
        r.batch_old.clear();
        r.batch_started_ms = now_ms;
        set_state(r, RolloutState::Paused, now_ms);
        note(d, RolloutNote::Kind::Paused, r, "paused " + pause_reason + "; resume to go on");
        d.surge = holding_surge(t, desired, max_surge);
        return d;
      }
    }
    if (r.batch == 0 && r.old_at_start == 0) r.old_at_start = static_cast<std::uint32_t>(t.old.size());
    ++r.batch;
    r.between_batches = false;
    std::uint32_t size = std::max<std::uint32_t>(1, resolve_up(s.batch, desired));
    if (r.batch == 1) size = std::max<std::uint32_t>(size, static_cast<std::uint32_t>(r.canary.size()));
    r.batch_old = pick_batch(t.old, size);
    r.batch_started_ms = now_ms;
    r.failures_in_batch = 0;
    r.updated_ms = now_ms;
    batch_alive = static_cast<std::uint32_t>(r.batch_old.size());
    note(d, RolloutNote::Kind::BatchStarted, r,
         "batch " + std::to_string(r.batch) + ": replacing " + std::to_string(r.batch_old.size()) + " instance(s) with " +
             target_launch_configuration(r) + ":" + std::to_string(target_version(r)),
         r.batch_old);
  }

  if (r.failures_in_batch >= std::max<std::size_t>(1, r.batch_old.size())) {
    fail(r, d,
         std::to_string(r.failures_in_batch) + " new instance(s) failed in batch " + std::to_string(r.batch),
         now_ms);
    d.surge = r.state == RolloutState::Paused ? holding_surge(t, desired, max_surge) : 0;
    return d;
  }
  if (now_ms - r.batch_started_ms > s.batch_deadline_ms) {
    fail(r, d,
         "batch " + std::to_string(r.batch) + " was not done within " + duration_text(s.batch_deadline_ms) + " (" +
             std::to_string(batch_alive) + " old instance(s) left, capacity " + std::to_string(t.capacity) + " of " +
             std::to_string(desired) + ")",
         now_ms);
    d.surge = r.state == RolloutState::Paused ? holding_surge(t, desired, max_surge) : 0;
    return d;
  }

  // Retire what the floor allows: instances that do not serve cost nothing.
  std::uint32_t capacity = t.capacity;
  std::vector<const RolloutMember*> candidates;
  for (const auto& id : r.batch_old) {
    const auto it = t.by_id.find(id);
    if (it != t.by_id.end() && it->second->counting) candidates.push_back(it->second);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const RolloutMember* a, const RolloutMember* b) { return !a->serving && b->serving; });
  for (const RolloutMember* m : candidates) {
    if (m->serving) {
      if (capacity == 0 || capacity - 1 < floor) break;
      --capacity;
    }
    d.retire.push_back(m->id);
    --batch_alive;
    ++r.replaced;
  }
  if (!d.retire.empty()) {
    r.updated_ms = now_ms;
    d.changed = true;
  }
  d.surge = std::min(max_surge, batch_alive);
  return d;
}

// ---- operator actions ---------------------------------------------------------

tl::expected<void, ModelError> pause(Rollout& r, std::string reason, TimeMs now_ms) {
  if (r.state != RolloutState::Running) {
    return tl::make_unexpected(error("rollout " + r.id + " is " + std::string(to_string(r.state)) +
                                     ", only a running rollout can be paused"));
  }
  r.reason = reason.empty() ? "paused by request" : std::move(reason);
  set_state(r, RolloutState::Paused, now_ms);
  return {};
}

tl::expected<void, ModelError> resume(Rollout& r, TimeMs now_ms) {
  if (r.state != RolloutState::Paused) {
    return tl::make_unexpected(
        error("rollout " + r.id + " is " + std::string(to_string(r.state)) + ", only a paused rollout can resume"));
  }
  r.reason.clear();
  r.batch_started_ms = now_ms;  // the deadline counts from the resume
  r.failures_in_batch = 0;
  set_state(r, RolloutState::Running, now_ms);
  return {};
}

tl::expected<void, ModelError> cancel(Rollout& r, std::string reason, TimeMs now_ms) {
  if (is_terminal(r.state)) {
    return tl::make_unexpected(error("rollout " + r.id + " is already " + std::string(to_string(r.state))));
  }
  r.reason = reason.empty() ? "cancelled by request" : std::move(reason);
  set_state(r, RolloutState::Cancelled, now_ms);
  return {};
}

tl::expected<void, ModelError> rollback(Rollout& r, std::string reason, TimeMs now_ms) {
  if (r.state == RolloutState::RollingBack) {
    return tl::make_unexpected(error("rollout " + r.id + " is already rolling back"));
  }
  if (r.state == RolloutState::Succeeded || r.state == RolloutState::RolledBack) {
    return tl::make_unexpected(error("rollout " + r.id + " is " + std::string(to_string(r.state)) +
                                     "; start a new rollout to " + r.from_launch_configuration + ":" +
                                     std::to_string(r.from_version) + " instead"));
  }
  start_rollback(r, reason.empty() ? "rolled back by request" : std::move(reason), now_ms);
  r.finished_ms = 0;
  return {};
}

}  // namespace tide::coordinator
