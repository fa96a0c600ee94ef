#pragma once

// MeasureRate: how often an operation completes per second, the loop the single-operation
// drivers (devid_sign_bench, devid_sas_token_bench) share.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace devid::bench {

// RateResult is what MeasureRate saw: completed and failed calls, wall and CPU time, and every
// call's latency in microseconds, sorted.
struct RateResult {
  uint64_t ok = 0;
  uint64_t failures = 0;
  double elapsed_s = 0;
  double cpu_s = 0;  // this process's user + system time: independent of other processes' load
  std::vector<uint32_t> latencies_us;

  double PerSecond() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
  double PerCpuSecond() const { return cpu_s > 0 ? static_cast<double>(ok) / cpu_s : 0; }
  // PercentileMs is the q-quantile (0 < q <= 1) of the latencies in milliseconds, nearest rank.
  double PercentileMs(double q) const {
    if (latencies_us.empty()) return 0;
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(latencies_us.size())));
    k = std::min(latencies_us.size(), std::max<size_t>(k, 1));
    return static_cast<double>(latencies_us[k - 1]) / 1000.0;
  }
  double MaxMs() const { return latencies_us.empty() ? 0 : latencies_us.back() / 1000.0; }
};

inline double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// MeasureRate calls operation in a loop on each of threads threads for seconds; operation returns
// whether the call succeeded and must be safe to call concurrently when threads > 1.
inline RateResult MeasureRate(int threads, double seconds, const std::function<bool()>& operation) {
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> failures{0};
  std::vector<std::vector<uint32_t>> latencies(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  auto start = Clock::now();
  double cpu_before = ProcessCpuSeconds();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = latencies[static_cast<size_t>(t)];
      mine.reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        auto begin = Clock::now();
        if (!operation()) ++failures;
        mine.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin).count()));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  RateResult result;
  result.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  result.cpu_s = ProcessCpuSeconds() - cpu_before;
  for (auto& l : latencies)
    result.latencies_us.insert(result.latencies_us.end(), l.begin(), l.end());
  std::sort(result.latencies_us.begin(), result.latencies_us.end());
  result.failures = failures.load();
  result.ok = result.latencies_us.size() - result.failures;
  return result;
}

}  // namespace devid::bench
