#pragma once

#include <string>

#include "pki/certificate.h"

namespace devid::pki {

// X5tS256 returns certificate's JOSE thumbprint: base64url (no padding) of SHA-256 over its
// DER, as the "x5t#S256" JWS header (RFC 7515 §4.1.8) and confirmation (RFC 8705 §3.1) carry it.
std::string X5tS256(const Certificate& certificate);

}  // namespace devid::pki
