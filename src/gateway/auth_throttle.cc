#include "gateway/auth_throttle.h"

#include <algorithm>
#include <utility>

namespace devid::gateway {

AuthThrottle::AuthThrottle(const Clock& clock, AuthThrottleOptions options)
    : clock_(clock), options_(options) {}

std::chrono::system_clock::time_point AuthThrottle::RetryAt(const Entry& entry) const {
  if (entry.failures >= options_.refuse_after) return entry.last_failure + options_.refuse_for;
  if (entry.failures < options_.slow_after) return entry.last_failure;
  // Exponential backoff: 1 s, 2 s, 4 s, ... so guessing a key gets slower with each failure.
  int doublings = std::min(entry.failures - options_.slow_after, 30);
  auto delay = std::min<std::chrono::system_clock::duration>(
      std::chrono::seconds(int64_t{1} << doublings), options_.refuse_for);
  return entry.last_failure + delay;
}

void AuthThrottle::ForgetExpired(std::chrono::system_clock::time_point now) {
  while (!order_.empty()) {
    auto oldest = entries_.find(order_.back());
    if (now < oldest->second.last_failure + options_.refuse_for) break;
    entries_.erase(oldest);
    order_.pop_back();
  }
}

Status AuthThrottle::Check(std::string_view key) {
  auto now = clock_.Now();
  std::lock_guard lock(mu_);
  ForgetExpired(now);
  auto found = entries_.find(std::string(key));
  if (found == entries_.end()) return Ok();
  auto retry_at = RetryAt(found->second);
  if (now >= retry_at) return Ok();
  auto wait = std::chrono::ceil<std::chrono::seconds>(retry_at - now);
  return std::unexpected(ResourceExhausted(std::to_string(found->second.failures) +
                                           " failed authentications; retry in " +
                                           std::to_string(wait.count()) + " s"));
}

void AuthThrottle::RecordFailure(std::string_view key) {
  auto now = clock_.Now();
  std::lock_guard lock(mu_);
  ForgetExpired(now);
  auto [it, inserted] = entries_.try_emplace(std::string(key));
  if (inserted) {
    if (entries_.size() > options_.max_entries) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(it->first);
  } else {
    order_.splice(order_.begin(), order_, it->second.order);
  }
  it->second.order = order_.begin();
  it->second.failures = std::min(it->second.failures + 1, options_.refuse_after);
  it->second.last_failure = now;
}

void AuthThrottle::RecordSuccess(std::string_view key) {
  std::lock_guard lock(mu_);
  auto found = entries_.find(std::string(key));
  if (found == entries_.end()) return;
  order_.erase(found->second.order);
  entries_.erase(found);
}

size_t AuthThrottle::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace devid::gateway
