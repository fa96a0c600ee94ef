#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::api {

// kPeerKekLabel starts the message whose HMAC under a symmetric device's key is the key that
// wraps session keys for it (docs/tokens.md); the SDK's copy must stay equal.
inline constexpr std::string_view kPeerKekLabel = "devid peer kek";

// PeerKek returns HMAC-SHA256(device_key, "devid peer kek" || audience): the key-encryption key
// of a symmetric device B (audience = B's registration ID). An HMAC rather than HKDF, so that a
// device whose key is in a TPM or PKCS #11 token derives it through its SAS signing operation.
std::array<uint8_t, 32> PeerKek(std::span<const uint8_t> device_key, std::string_view audience);

// SealSessionKey returns session_key encrypted for the holder of kek as a JWE compact
// serialization (RFC 7516 §7.1) with alg "dir" and enc "A256GCM", the form of cnf.jwe
// (RFC 7800 §3.3). Fails with kInternal when the JOSE library does.
Result<std::string> SealSessionKey(std::span<const uint8_t, 32> kek,
                                   std::span<const uint8_t> session_key);

}  // namespace devid::api
