#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace devid::attestation {

// ObservationThrottle remembers which certificates this process recorded as observed recently, so
// a device that authenticates many times a minute moves its inventory last_seen once per interval
// instead of writing to the store on every request. Thread-safe.
class ObservationThrottle {
 public:
  explicit ObservationThrottle(std::chrono::seconds interval, size_t capacity = 100'000)
      : interval_(interval), capacity_(capacity) {}

  // ShouldRecord returns true, and notes now, when thumbprint was not recorded in the last
  // interval; false otherwise. Past capacity entries it forgets everything (one more write each).
  bool ShouldRecord(const std::string& thumbprint, std::chrono::system_clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = recorded_.try_emplace(thumbprint, now);
    if (!inserted && now - it->second < interval_ && now >= it->second) return false;
    it->second = now;
    if (recorded_.size() > capacity_) recorded_.clear();
    return true;
  }

  // Forget drops thumbprint, so its next observation is recorded (after a failed write).
  void Forget(const std::string& thumbprint) {
    std::lock_guard lock(mutex_);
    recorded_.erase(thumbprint);
  }

 private:
  const std::chrono::seconds interval_;
  const size_t capacity_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::chrono::system_clock::time_point> recorded_;
};

}  // namespace devid::attestation
