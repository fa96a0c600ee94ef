#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_uri.h"

namespace devid::keys {

// HmacKey is a handle to a symmetric key (a device's SAS key) that stays inside its key store: it
// computes HMAC-SHA256 but never reveals the key. HmacSha256 may be called from many threads at
// once. An HmacKey must not outlive the HmacKeyStore that returned it.
class HmacKey {
 public:
  virtual ~HmacKey() = default;
  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;

  // uri is the key's URI, secrets redacted (KeyUri::ToString).
  const std::string& uri() const { return uri_; }

  // HmacSha256 returns HMAC-SHA256(key, message) (RFC 2104, FIPS 198-1) computed inside the
  // store. It fails with the store's error: kUnavailable when the device is gone, kNotFound when
  // the key was deleted, kInternal otherwise.
  virtual Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) const = 0;

 protected:
  explicit HmacKey(std::string uri) : uri_(std::move(uri)) {}

 private:
  std::string uri_;
};

// HmacKeyStore is the optional capability of a key store to hold symmetric HMAC keys beside its
// signing keys. Implementations are thread-safe.
class HmacKeyStore {
 public:
  virtual ~HmacKeyStore() = default;

  // ImportHmacKey stores key (the raw bytes, not base64) at uri so that it can only be used for
  // HMAC from then on. The caller keeps ownership of key and should cleanse it afterwards. Fails
  // with kAlreadyExists when uri already names a secret key, kInvalidArgument when uri lacks what
  // the store needs or key's size is unsupported, kNotFound when the container is missing and
  // kPermissionDenied on a wrong PIN.
  virtual Result<std::unique_ptr<HmacKey>> ImportHmacKey(const KeyUri& uri,
                                                         std::span<const uint8_t> key) = 0;

  // LoadHmacKey opens the existing HMAC key at uri. Fails with kNotFound when there is none,
  // kInvalidArgument when several match or the key may not compute HMACs, and kPermissionDenied
  // on a wrong PIN.
  virtual Result<std::unique_ptr<HmacKey>> LoadHmacKey(const KeyUri& uri) = 0;
};

}  // namespace devid::keys
