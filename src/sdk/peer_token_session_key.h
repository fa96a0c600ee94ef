#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "devid/credential.h"
#include "devid/peer_token.h"

namespace devid::sdk {

// OpenSessionKey decrypts a token's cnf.jwe (RFC 7516 compact, alg "dir", enc "A256GCM", nothing
// else accepted) with the key-encryption key own_key.HmacSha256(pki::PeerKekMessage(audience)).
// Fails with kInvalidArgument for another form, kUnauthenticated when it does not decrypt (sealed
// for another key, or altered), or with the key store's error.
Result<PeerSessionKey> OpenSessionKey(const std::string& jwe, SasCredential& own_key,
                                      std::string_view audience);

}  // namespace devid::sdk
