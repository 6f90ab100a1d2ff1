// store_bench: microseconds per typical write on a real file in WAL mode, for
// both synchronous settings. Not a test; prints one line per measurement.
//   store_bench [directory] [iterations]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "coordinator/io/store/store.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double mean_us = 0;
  double p50_us = 0;
  double p99_us = 0;
};

Stats summarize(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  Stats s;
  double sum = 0;
  for (double v : samples) sum += v;
  s.mean_us = sum / static_cast<double>(samples.size());
  s.p50_us = samples[samples.size() / 2];
  s.p99_us = samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
  return s;
}

template <class F>
Stats measure(int iterations, F&& body) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    if (!body(i)) {
      std::fprintf(stderr, "store_bench: write %d failed\n", i);
      std::exit(1);
    }
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return summarize(std::move(samples));
}

void report(const char* sync, const char* what, const Stats& s) {
  std::printf("synchronous=%-6s %-34s mean %8.1f us  p50 %8.1f us  p99 %8.1f us\n", sync, what,
              s.mean_us, s.p50_us, s.p99_us);
}

int run(const std::filesystem::path& dir, Synchronous sync, const char* sync_name, int iterations) {
  const std::string path = (dir / (std::string("bench-") + sync_name + ".db")).string();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  OpenOptions options;
  options.synchronous = sync;
  auto store = Store::open(path, options);
  if (!store) {
    std::fprintf(stderr, "store_bench: %s\n", store.error().message.c_str());
    return 1;
  }
  LaunchConfiguration config;
  config.id = "web";
  config.command = "tide-sample-app";
  config.port = 8080;
  config.created_ms = 1;
  ScalingGroup group;
  group.name = "g";
  group.max = 1000;
  group.launch_configuration_id = "web";
  if (!store->insert_launch_configuration(config) || !store->insert_group(group)) return 1;

  Instance instance;
  instance.group = "g";
  instance.launch_configuration_id = "web";
  instance.launch_configuration_version = 1;
  instance.address = "127.0.1.1";
  instance.port = 8080;
  instance.enrollment_token_hash = std::string(64, 'f');
  // New rows, then state changes of existing rows (the common case).
  report(sync_name, "instance upsert (insert)", measure(iterations, [&](int i) {
           instance.id = "i-" + std::to_string(i);
           instance.created_ms = i;
           return store->upsert_instance(instance).has_value();
         }));
  report(sync_name, "instance upsert (state change)", measure(iterations, [&](int i) {
           instance.id = "i-" + std::to_string(i);
           instance.state = LifecycleState::InService;
           instance.state_since_ms = 1000 + i;
           return store->upsert_instance(instance).has_value();
         }));
  report(sync_name, "begin_provider_call (row + key)", measure(iterations, [&](int i) {
           instance.id = "j-" + std::to_string(i);
           IdempotencyRecord call{"k-" + std::to_string(i),
                                  "launch",
                                  instance.id,
                                  ProviderCallState::Requested,
                                  "",
                                  i,
                                  std::nullopt};
           return store->begin_provider_call(instance, call).has_value();
         }));
  report(sync_name, "begin_provider_calls (batch of 10)",
         measure(std::max(1, iterations / 10), [&](int i) {
           std::vector<Store::ProviderCall> batch;
           for (int n = 0; n < 10; ++n) {
             instance.id = "b-" + std::to_string(i * 10 + n);
             batch.push_back({instance,
                              {"kb-" + std::to_string(i * 10 + n), "launch", instance.id,
                               ProviderCallState::Requested, "", i, std::nullopt}});
           }
           return store->begin_provider_calls(batch).has_value();
         }));
  report(sync_name, "checkpoint (PASSIVE)",
         measure(10, [&](int) { return store->checkpoint().has_value(); }));
  Activity activity;
  activity.group = "g";
  activity.cause = "alarm cpu_high: avg cpu_pct 91.5 > 80";
  activity.instances = {{"i-1", "launched", true}};
  report(sync_name, "activity insert (1 instance row)", measure(iterations, [&](int i) {
           activity.id = "a-" + std::to_string(i);
           activity.start_ms = i;
           return store->insert_activity(activity).has_value();
         }));
  report(sync_name, "activity status update", measure(iterations, [&](int i) {
           return store
               ->update_activity_status("a-" + std::to_string(i), ActivityStatus::Successful, i + 5)
               .has_value();
         }));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : std::filesystem::temp_directory_path();
  const int iterations = argc > 2 ? std::max(10, std::atoi(argv[2])) : 2000;
  std::printf("store_bench: %d iterations per measurement, files in %s\n", iterations, dir.c_str());
  if (run(dir, Synchronous::Full, "FULL", iterations) != 0) return 1;
  if (run(dir, Synchronous::Normal, "NORMAL", iterations) != 0) return 1;
  return 0;
}
