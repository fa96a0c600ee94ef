#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace devid {

// SharedValue holds a value that one thread may replace while others read it, such as a setting
// a node re-reads from its store. Get returns the current value as an immutable snapshot that
// stays valid for as long as the caller keeps it, whatever Set does meanwhile. Thread-safe.
template <typename T>
class SharedValue {
 public:
  explicit SharedValue(T value) : value_(std::make_shared<const T>(std::move(value))) {}

  // Get returns the current value.
  std::shared_ptr<const T> Get() const {
    std::lock_guard lock(mu_);
    return value_;
  }

  // Set replaces the value; snapshots taken before keep the old one.
  void Set(T value) {
    auto next = std::make_shared<const T>(std::move(value));
    std::lock_guard lock(mu_);
    value_.swap(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
};

}  // namespace devid
