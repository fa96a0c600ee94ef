#pragma once

// The key stores a driver opens a key URI through, as `devid serve` has them: file: keys with
// passphrases from the environment, and pkcs11: keys.

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "keys/key_store.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"

namespace devid::bench {

class DriverKeyStores {
 public:
  // pkcs11_module is the PKCS #11 library for URIs without module-path.
  explicit DriverKeyStores(const std::string& pkcs11_module) : pkcs11_keys_(pkcs11_module) {
    stores_.Add("file", file_keys_);
    stores_.Add("pkcs11", pkcs11_keys_);
  }
  DriverKeyStores(const DriverKeyStores&) = delete;
  DriverKeyStores& operator=(const DriverKeyStores&) = delete;

  Result<std::unique_ptr<keys::Key>> Load(const std::string& uri) const {
    return stores_.Load(uri);
  }

 private:
  keys::FileKeyStore file_keys_{[](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  }};
  keys::Pkcs11KeyStore pkcs11_keys_;
  keys::KeyStores stores_;
};

}  // namespace devid::bench
