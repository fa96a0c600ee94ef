#pragma once

#include <string>
#include <string_view>

#include "pki/certificate.h"

namespace devid::pki {

// X5tS256 returns certificate's JOSE thumbprint: base64url (no padding) of SHA-256 over its
// DER, as the "x5t#S256" JWS header (RFC 7515 §4.1.8) and confirmation (RFC 8705 §3.1) carry it.
std::string X5tS256(const Certificate& certificate);

// X5tS256FromThumbprint is the same from the certificate's SHA-256 thumbprint in hex
// (Certificate::Sha256Thumbprint, an inventory record's), sparing a second digest; "" when
// sha256_hex is not 32 bytes of hex.
std::string X5tS256FromThumbprint(std::string_view sha256_hex);

}  // namespace devid::pki
