#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace devid {

// ExpiringMemo remembers a value by key for at most ttl and never past a time the caller gives,
// for results that are costly to reach and stay true for a while, such as a certificate path
// that validated (OpenSSL 3.0 spends two ECDSA verifications and its provider lookups on each).
// A clock set back before an entry was made invalidates it. Past capacity entries it forgets
// everything (each is then computed once more). Thread-safe.
template <typename Value>
class ExpiringMemo {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit ExpiringMemo(std::chrono::seconds ttl = std::chrono::seconds(60),
                        size_t capacity = 100'000)
      : ttl_(ttl), capacity_(capacity) {}

  // Find returns key's value when it was remembered and still holds at now.
  std::optional<Value> Find(const std::string& key, TimePoint now) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || !Holds(it->second, now)) return std::nullopt;
    return it->second.value;
  }

  // Remember keeps value for key from now until now + ttl or not_after, whichever comes first.
  void Remember(const std::string& key, Value value, TimePoint now, TimePoint not_after) {
    std::lock_guard lock(mutex_);
    RememberLocked(key, std::move(value), now, not_after);
  }

  // RememberIfAbsent remembers value as Remember does unless key holds a value at now, and says
  // whether it did: one step, so that of two threads asking at once only one is told to act (a
  // write done at most once per ttl).
  bool RememberIfAbsent(const std::string& key, Value value, TimePoint now, TimePoint not_after) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && Holds(it->second, now)) return false;
    RememberLocked(key, std::move(value), now, not_after);
    return true;
  }

  // Forget drops key (after the act it stood for failed, say).
  void Forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    entries_.erase(key);
  }

 private:
  struct Entry {
    Value value;
    TimePoint since;
    TimePoint until;
  };

  static bool Holds(const Entry& entry, TimePoint now) {
    return now >= entry.since && now < entry.until;
  }

  void RememberLocked(const std::string& key, Value value, TimePoint now, TimePoint not_after) {
    if (entries_.size() >= capacity_) entries_.clear();
    entries_.insert_or_assign(key, Entry{std::move(value), now, std::min(now + ttl_, not_after)});
  }

  const std::chrono::seconds ttl_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devid
