#pragma once

#include <string_view>

#include "ca/jws_signer.h"

namespace devid::ca {

// kPeerTokenType is the JWS "typ" of a peer token (RFC 8725 §3.11 explicit typing), so that a
// peer never takes a command envelope or another JWT for one (docs/tokens.md).
inline constexpr std::string_view kPeerTokenType = "devid-peer+jwt";

// TokenSigner signs peer tokens, with a certificate under the token-signer profile that peers
// pin (token-signer.pem).
using TokenSigner = JwsSigner;

}  // namespace devid::ca
