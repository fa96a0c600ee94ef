#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::api {

// PeerKek returns HMAC-SHA256(device_key, pki::PeerKekMessage(audience)): the key-encryption key
// of a symmetric device B (audience = B's registration ID), as the SDK derives it.
std::array<uint8_t, 32> PeerKek(std::span<const uint8_t> device_key, std::string_view audience);

// SealSessionKey returns session_key encrypted for the holder of kek as a JWE compact
// serialization (RFC 7516 §7.1) with alg "dir" and enc "A256GCM", the form of cnf.jwe
// (RFC 7800 §3.3). Fails with kInternal when the JOSE library does.
Result<std::string> SealSessionKey(std::span<const uint8_t, 32> kek,
                                   std::span<const uint8_t> session_key);

}  // namespace devid::api
