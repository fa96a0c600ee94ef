#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"
#include "ca/jws_signer.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// kCommandEnvelopeType is the JWS "typ" of a command envelope (RFC 7515 §4.1.9), so that a
// device never takes another JWS made with the same key for a command.
inline constexpr std::string_view kCommandEnvelopeType = "devid-command+jws";

// CommandSigner signs command envelopes for devices (docs/commands.md).
using CommandSigner = JwsSigner;

// CreateCommandSigner is JwsSigner::Create for command envelopes (kCommandEnvelopeType), with a
// certificate under the command-signer profile.
inline Result<std::unique_ptr<CommandSigner>> CreateCommandSigner(pki::Certificate certificate,
                                                                  std::unique_ptr<keys::Key> key) {
  return JwsSigner::Create(std::move(certificate), std::move(key), kCommandEnvelopeType);
}

}  // namespace devid::ca
