#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// kCommandEnvelopeType is the JWS "typ" of a command envelope (RFC 7515 §4.1.9), so that a
// device never takes another JWS made with the same key for a command.
inline constexpr std::string_view kCommandEnvelopeType = "devid-command+jws";

// CommandSigner signs command envelopes for devices (docs/commands.md): JWS compact
// serialization (RFC 7515 §7.1) whose protected header carries alg, typ and the signer
// certificate's x5t#S256 (§4.1.8). The key signs through its key store, so it may live in an HSM.
// Thread-safe: Sign may be called from many threads at once.
class CommandSigner {
 public:
  // Create pairs a certificate under the command-signer profile with its key. Fails with
  // kInvalidArgument when the key does not match the certificate or is not ECDSA P-256 or P-384
  // (ES256 / ES384, RFC 7518 §3.4: the algorithms devices verify).
  static Result<std::unique_ptr<CommandSigner>> Create(pki::Certificate certificate,
                                                       std::unique_ptr<keys::Key> key);

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
  CommandSigner(pki::Certificate certificate, std::unique_ptr<keys::Key> key, std::string alg,
                std::string header);

  pki::Certificate certificate_;
  std::unique_ptr<keys::Key> key_;
  std::string alg_;
  std::string encoded_header_;  // base64url of the protected header
};

}  // namespace devid::ca
