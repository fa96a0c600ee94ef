#pragma once

#include <string>
#include <string_view>

namespace devid::pki {

// kPeerKekLabel starts the message whose HMAC-SHA256 under a symmetric device's key is the key
// that wraps session keys for it (docs/tokens.md). An HMAC rather than HKDF, so that a device
// whose key is in a TPM or PKCS #11 token derives it through its SAS signing operation.
inline constexpr std::string_view kPeerKekLabel = "devid peer kek";

// PeerKekMessage returns "devid peer kek" || audience, the HMAC input of device audience's KEK;
// the authority and the SDK both build it here so the two sides cannot drift apart.
inline std::string PeerKekMessage(std::string_view audience) {
  std::string message(kPeerKekLabel);
  message += audience;
  return message;
}

}  // namespace devid::pki
