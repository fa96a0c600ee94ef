#pragma once

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"
#include "keys/testing/softhsm_token.h"

// Key store back ends for tests that run against every store: encrypted files in a temporary
// directory and a fresh SoftHSM2 token. Test-only.
namespace devid::keys::testing {

constexpr char kPassphrase[] = "correct horse battery staple";

// FileBackend is a FileKeyStore over a temporary directory (removed on destruction); its URIs take
// the passphrase kPassphrase from DEVID_TEST_PASSPHRASE.
class FileBackend {
 public:
  FileBackend()
      : store_([](const std::string& name) -> std::optional<std::string> {
          if (name == "DEVID_TEST_PASSPHRASE") return std::string(kPassphrase);
          return std::nullopt;
        }) {
    char tmpl[] = "/tmp/devid-keys-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~FileBackend() { std::filesystem::remove_all(dir_); }
  bool ok() const { return true; }
  KeyStore& store() { return store_; }
  std::string Uri(std::string_view name) const {
    return "file:" + dir_ + "/" + std::string(name) + ".key?passphrase-env=DEVID_TEST_PASSPHRASE";
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  FileKeyStore store_;
};

// SoftHsmBackend is a Pkcs11KeyStore over a fresh SoftHSM2 token (SoftHsmToken); its URIs read
// the PIN from the token's pin file.
class SoftHsmBackend {
 public:
  SoftHsmBackend() : store_(DEVID_SOFTHSM2_MODULE) {}
  bool ok() const { return token_.ok(); }
  Pkcs11KeyStore& store() { return store_; }
  std::string Uri(std::string_view name) const {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + std::string(name) +
           "?pin-source=" + token_.pin_file();
  }
  const SoftHsmToken& token() const { return token_; }

 private:
  SoftHsmToken token_;  // first: SOFTHSM2_CONF must be set before the module loads
  Pkcs11KeyStore store_;
};

}  // namespace devid::keys::testing
