#pragma once

#include <memory>
#include <string_view>

#include "ca/authority.h"
#include "ca/jws_signer.h"
#include "ca/profile.h"
#include "ca/token_signer.h"
#include "keys/software/file_key_store.h"

namespace devid::ca::testing {

// MakeTestTokenSigner gives a fresh P-256 software key a token-signer certificate from authority
// and returns the JWS signer over them that stamps typ. Fails as Authority::Issue and
// JwsSigner::Create.
inline Result<std::shared_ptr<const JwsSigner>> MakeTestTokenSigner(
    const Authority& authority, std::string_view typ = kPeerTokenType) {
  DEVID_ASSIGN_OR_RETURN(auto pkey, keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256));
  DEVID_ASSIGN_OR_RETURN(auto key, keys::SoftwareKey(std::move(pkey), "test:token-signer"));
  DEVID_ASSIGN_OR_RETURN(
      auto certificate,
      authority.Issue(kTokenSignerProfile,
                      {.common_name = "devid token signer", .public_key = key->public_key()}));
  DEVID_ASSIGN_OR_RETURN(auto signer,
                         JwsSigner::Create(std::move(certificate), std::move(key), typ));
  return std::shared_ptr<const JwsSigner>(std::move(signer));
}

}  // namespace devid::ca::testing
