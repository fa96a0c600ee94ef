#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace devid::registry::sqlite {

// SnapshotCache keeps values read from the store by key, each as of one value of the store's
// change counter (migration 8: every insert, update and delete of an enrollment, group,
// registration or certificate adds one in the same transaction). Two snapshots that read the same
// count hold the same rows, so a value remembered at count c is exactly what a read at count c
// would return: a request that read c in its read transaction may take it instead of reading.
//
// It holds values of one count at a time: remembering at a higher count forgets the rest, one at
// a lower count (a reader on an older snapshot) is ignored. Past capacity entries it forgets
// everything. Thread-safe.
template <typename Value>
class SnapshotCache {
 public:
  explicit SnapshotCache(size_t capacity = 10'000) : capacity_(capacity) {}

  // Find returns key's value when one was remembered at count.
  std::optional<Value> Find(std::string_view key, int64_t count) const {
    std::lock_guard lock(mutex_);
    if (count != count_) return std::nullopt;
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  // Remember keeps value for key as read at count.
  void Remember(std::string_view key, int64_t count, Value value) {
    std::lock_guard lock(mutex_);
    if (count < count_) return;
    if (count > count_ || entries_.size() >= capacity_) {
      entries_.clear();
      count_ = count;
    }
    entries_.insert_or_assign(std::string(key), std::move(value));
  }

 private:
  // Hash finds string keys by string_view without building a string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };

  const size_t capacity_;
  mutable std::mutex mutex_;
  int64_t count_ = -1;                                                     // guarded by mutex_
  std::unordered_map<std::string, Value, Hash, std::equal_to<>> entries_;  // guarded by mutex_
};

}  // namespace devid::registry::sqlite
