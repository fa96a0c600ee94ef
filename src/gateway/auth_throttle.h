#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "base/result.h"

namespace devid::gateway {

// AuthThrottleOptions sets when AuthThrottle slows and refuses a key.
struct AuthThrottleOptions {
  // slow_after failures in a row make the key wait before its next attempt: 1 s after the
  // slow_after-th failure, doubling with each further one (capped at refuse_for).
  int slow_after = 3;
  // refuse_after failures in a row refuse the key for refuse_for after its latest failure.
  int refuse_after = 10;
  std::chrono::seconds refuse_for{300};
  // max_entries caps the keys remembered; when full, the one that failed longest ago is
  // forgotten. A key is also forgotten refuse_for after its latest failure.
  size_t max_entries = 10000;
};

// AuthThrottle slows down and then refuses a key (a client id, an address) that keeps failing to
// authenticate, without blocking anyone: an attempt made too early is refused outright instead of
// being checked. Memory is bounded by max_entries, and entries expire.
//
// Thread-safe. clock must outlive it.
class AuthThrottle {
 public:
  AuthThrottle(const Clock& clock, AuthThrottleOptions options);

  // Check allows an attempt by key now, or fails with kResourceExhausted saying how many
  // failures it has and when it may try again. It records nothing.
  Status Check(std::string_view key);
  // RecordFailure counts a failed (or refused) attempt by key.
  void RecordFailure(std::string_view key);
  // RecordSuccess forgets key's failures.
  void RecordSuccess(std::string_view key);

  // size is the number of keys remembered.
  size_t size() const;

 private:
  struct Entry {
    int failures = 0;
    std::chrono::system_clock::time_point last_failure;
    std::list<std::string>::iterator order;
  };

  // RetryAt is when an entry may next try.
  std::chrono::system_clock::time_point RetryAt(const Entry& entry) const;
  // ForgetExpired drops entries whose latest failure is refuse_for old. Needs mu_.
  void ForgetExpired(std::chrono::system_clock::time_point now);

  const Clock& clock_;
  const AuthThrottleOptions options_;
  mutable std::mutex mu_;
  std::list<std::string> order_;  // most recent failure first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devid::gateway
