#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace devid::ca {

// VerifiedPathMemo remembers which certificates passed path validation recently, by SHA-256
// thumbprint, so that a device asking many times over a kept-alive connection (or reconnecting)
// is not validated again each time: OpenSSL 3.0 spends two ECDSA verifications and its provider
// lookups on each path, most of a request's cost. Only success is remembered, for at most ttl and
// never past the time the caller gives (the certificate's notAfter). It answers for the path
// only: revocation and the enrollment are still read on every request. Past capacity entries it
// forgets everything (one more validation each). Thread-safe.
class VerifiedPathMemo {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit VerifiedPathMemo(std::chrono::seconds ttl = std::chrono::seconds(60),
                            size_t capacity = 100'000)
      : ttl_(ttl), capacity_(capacity) {}

  // Verified tells whether thumbprint was remembered and its entry still holds at now.
  bool Verified(const std::string& thumbprint, TimePoint now) const {
    std::lock_guard lock(mutex_);
    auto it = until_.find(thumbprint);
    return it != until_.end() && now < it->second.until && now >= it->second.since;
  }

  // Remember notes that thumbprint's path validated at now; the entry holds until now + ttl or
  // not_after, whichever comes first.
  void Remember(const std::string& thumbprint, TimePoint now, TimePoint not_after) {
    std::lock_guard lock(mutex_);
    if (until_.size() >= capacity_) until_.clear();
    until_[thumbprint] = Entry{now, std::min(now + ttl_, not_after)};
  }

 private:
  struct Entry {
    TimePoint since;  // a clock set back before it invalidates the entry
    TimePoint until;
  };
  const std::chrono::seconds ttl_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> until_;
};

}  // namespace devid::ca
