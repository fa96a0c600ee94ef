#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// JwsSigner signs what devid's devices verify offline, server-signed commands and peer tokens:
// JWS compact serialization (RFC 7515 §7.1) whose protected header carries alg, typ and the
// signer certificate's x5t#S256 (§4.1.8). The typ keeps one kind of JWS from passing for another
// (RFC 8725 §3.11). The key signs through its key store, so it may live in an HSM. Thread-safe:
// Sign may be called from many threads at once.
class JwsSigner {
 public:
  // Create pairs a certificate with its key and the typ every JWS it signs carries. Fails with
  // kInvalidArgument when the key does not match the certificate or is not ECDSA P-256 or P-384
  // (ES256 / ES384, RFC 7518 §3.4: the algorithms devices verify). typ must need no JSON
  // escaping.
  static Result<std::unique_ptr<JwsSigner>> Create(pki::Certificate certificate,
                                                   std::unique_ptr<keys::Key> key,
                                                   std::string_view typ);

  // Sign returns the compact JWS of payload (the JSON text, signed as given). Fails as the key
  // store does.
  Result<std::string> Sign(std::string_view payload) const;

  // certificate is the signer certificate devices pin.
  const pki::Certificate& certificate() const { return certificate_; }

  // NeedsRenewal tells whether the certificate should be replaced at now: less than a third of
  // its lifetime is left (or it is not valid yet), so a renewal happens well before devices
  // would see it expire.
  bool NeedsRenewal(std::chrono::system_clock::time_point now) const;

 private:
  JwsSigner(pki::Certificate certificate, std::unique_ptr<keys::Key> key, std::string header);

  pki::Certificate certificate_;
  std::unique_ptr<keys::Key> key_;
  std::string encoded_header_;  // base64url of the protected header
};

// JwsSignerSource returns the signer to sign with now (renewed first when it is due), or fails;
// the caller keeps the shared signer alive while it signs.
using JwsSignerSource = std::function<Result<std::shared_ptr<const JwsSigner>>()>;

}  // namespace devid::ca
