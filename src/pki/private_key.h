#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "ossl/unique_ptr.h"

namespace devid::pki {

// PrivateKey is an asymmetric key pair held in memory (software keys). Move-only.
class PrivateKey {
 public:
  // GenerateEcP256 makes a fresh ECDSA P-256 key.
  static Result<PrivateKey> GenerateEcP256();
  // FromPem parses a PKCS#8 (or traditional) PEM private key; fails with kInvalidArgument.
  static Result<PrivateKey> FromPem(std::string_view pem);

  // ToPem returns the key as unencrypted PKCS#8 PEM. The caller must keep it secret (mode 0600).
  Result<std::string> ToPem() const;
  // PublicKeyPem returns the SubjectPublicKeyInfo as PEM.
  Result<std::string> PublicKeyPem() const;

  // get returns the OpenSSL key; it stays owned by this object.
  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PrivateKey(ossl::UniquePtr<EVP_PKEY> key) : key_(std::move(key)) {}
  ossl::UniquePtr<EVP_PKEY> key_;
};

}  // namespace devid::pki
