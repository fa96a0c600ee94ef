#pragma once

#include <functional>
#include <optional>
#include <string>

#include "keys/key_store.h"
#include "keys/secret.h"

namespace devid::keys {

// FileKeyStore keeps each key in its own file as encrypted PKCS #8 PEM (RFC 5958 §3, PBES2 with
// PBKDF2-HMAC-SHA256 and AES-256-CBC, RFC 8018 §6.2), created mode 0600 and never overwritten.
// The passphrase comes from the URI: `passphrase-env=NAME` (read through the injected environment
// lookup) or `passphrase-file=PATH` (first line of the file). Unencrypted key files are refused.
class FileKeyStore final : public KeyStore {
 public:
  // Getenv looks up an environment variable; main passes the process environment.
  using Getenv = std::function<std::optional<std::string>(const std::string& name)>;

  explicit FileKeyStore(Getenv getenv) : getenv_(std::move(getenv)) {}

  // Create generates a key and writes it to uri.path, failing with kAlreadyExists when the file
  // exists and kInvalidArgument when the URI names no passphrase or an empty one.
  Result<std::unique_ptr<Key>> Create(const KeyUri& uri, KeyAlgorithm algorithm) override;
  // Load decrypts uri.path; a wrong passphrase fails with kPermissionDenied.
  Result<std::unique_ptr<Key>> Load(const KeyUri& uri) override;

 private:
  Result<Secret> Passphrase(const KeyUri& uri) const;
  Getenv getenv_;
};

// GenerateSoftwareKey makes a fresh in-memory key pair of algorithm with OpenSSL's CSPRNG. The
// caller owns it.
Result<ossl::UniquePtr<EVP_PKEY>> GenerateSoftwareKey(KeyAlgorithm algorithm);

// SoftwareKey wraps an in-memory private key (for example a throwaway test CA or a key generated
// for a device by EST serverkeygen). uri is a descriptive name only. Fails with kInvalidArgument
// for a key type or size KeyAlgorithm does not cover.
Result<std::unique_ptr<Key>> SoftwareKey(ossl::UniquePtr<EVP_PKEY> private_key, std::string uri);

}  // namespace devid::keys
