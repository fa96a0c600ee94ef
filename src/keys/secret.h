#pragma once

#include <openssl/crypto.h>

#include <string>
#include <string_view>

namespace devid::keys {

// Secret holds a passphrase or PIN and overwrites it (OPENSSL_cleanse) when destroyed. Move-only.
// Its buffer is reserved once so appends never leave stale copies behind.
class Secret {
 public:
  Secret() { value_.reserve(kCapacity); }
  explicit Secret(std::string_view value) : Secret() { Assign(value); }
  Secret(Secret&& other) noexcept : Secret() {
    Assign(other.value_);
    other.Clear();
  }
  Secret& operator=(Secret&& other) noexcept {
    Assign(other.value_);
    other.Clear();
    return *this;
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret() { Clear(); }

  // Assign replaces the value; values longer than 1023 bytes are truncated.
  void Assign(std::string_view value) {
    Clear();
    value_.append(value.substr(0, kCapacity - 1));
  }
  // Clear overwrites and empties the value.
  void Clear() {
    OPENSSL_cleanse(value_.data(), value_.capacity());
    value_.clear();
  }
  // value returns the secret; do not copy it into storage that is not cleansed.
  const std::string& value() const { return value_; }
  // empty tells whether no secret is held.
  bool empty() const { return value_.empty(); }

 private:
  static constexpr size_t kCapacity = 1024;
  std::string value_;
};

}  // namespace devid::keys
