#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace devid::ossl {

// Sha256Digest is a SHA-256 output.
using Sha256Digest = std::array<uint8_t, 32>;

// HmacSha256 returns HMAC-SHA256(key, message). It cannot fail for in-memory inputs; an OpenSSL
// failure here is a platform fault and aborts.
Sha256Digest HmacSha256(std::span<const uint8_t> key, std::string_view message);

// Sha256 returns SHA-256(data).
Sha256Digest Sha256(std::span<const uint8_t> data);

// ConstantTimeEquals compares two byte strings without a data-dependent early exit (the lengths
// are not secret).
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace devid::ossl
