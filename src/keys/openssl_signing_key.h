#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>

#include "base/result.h"
#include "keys/key_store.h"
#include "ossl/unique_ptr.h"

namespace devid::keys {

// OpenSslSigningKey returns an EVP_PKEY that OpenSSL can use wherever it wants a private key (a
// TLS client certificate's key, EVP_DigestSign) while the private key stays in key's store: the
// EVP_PKEY holds key's public half, and its private operation calls key->SignDigest. The EVP_PKEY
// keeps a reference to key until it is freed; key's store must outlive both.
//
// Only ECDSA keys (P-256, P-384) are bridged. It fails with kInvalidArgument for RSA keys, which
// would have to sign RSA-PSS in TLS 1.3 (RFC 8446 §4.2.3) while Key::Sign makes PKCS #1 v1.5, and
// for Ed25519 keys, which OpenSSL 3 can only delegate through a provider.
Result<ossl::UniquePtr<EVP_PKEY>> OpenSslSigningKey(std::shared_ptr<const Key> key);

// TakeSigningFailure returns, and forgets, the error of the last signature a bridged key failed
// to make on this thread (OpenSSL itself only reports that signing failed), so that a TLS client
// can say why its handshake broke: "the token is gone", a wrong PIN. nullopt when none failed.
std::optional<Error> TakeSigningFailure();

}  // namespace devid::keys
