#include "sdk/peer_token_session_key.h"

#include <cjose/cjose.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <memory>

#include "ossl/base64.h"
#include "ossl/mac.h"
#include "pki/jose_ptr.h"
#include "pki/peer_kek.h"

namespace devid::sdk {
namespace {

std::string HeaderValue(cjose_header_t* header, const char* name) {
  cjose_err err{};
  const char* value = header != nullptr ? cjose_header_get(header, name, &err) : nullptr;
  return value != nullptr ? value : "";
}

}  // namespace

PeerSessionKey::~PeerSessionKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

Result<PeerSessionKey> PeerSessionKey::FromBase64(std::string_view text) {
  auto decoded = ossl::Base64Decode(text);
  if (!decoded || decoded->size() != 32) {
    if (decoded) OPENSSL_cleanse(decoded->data(), decoded->size());
    return std::unexpected(InvalidArgument("a peer session key is base64 of 32 bytes"));
  }
  PeerSessionKey key;
  std::copy(decoded->begin(), decoded->end(), key.bytes.begin());
  OPENSSL_cleanse(decoded->data(), decoded->size());
  return key;
}

std::string PeerSessionKey::ToBase64() const { return ossl::Base64Encode(bytes); }

std::array<uint8_t, kPeerChallengeBytes> NewPeerChallenge() {
  std::array<uint8_t, kPeerChallengeBytes> challenge;
  // A predictable challenge would let a recorded proof pass: no fallback on CSPRNG failure.
  if (RAND_bytes(challenge.data(), static_cast<int>(challenge.size())) != 1) std::abort();
  return challenge;
}

std::array<uint8_t, 32> ProveWithSessionKey(const PeerSessionKey& key,
                                            std::span<const uint8_t> challenge,
                                            std::string_view subject, std::string_view audience) {
  std::string message(challenge.begin(), challenge.end());
  message += subject;
  message += '\0';
  message += audience;
  return ossl::HmacSha256(key.bytes, message);
}

Result<PeerSessionKey> OpenSessionKey(const std::string& jwe, SasCredential& own_key,
                                      std::string_view audience) {
  cjose_err err{};
  pki::JosePtr<cjose_jwe_t> parsed(cjose_jwe_import(jwe.data(), jwe.size(), &err));
  if (!parsed) return std::unexpected(InvalidArgument("cnf.jwe is not a JWE compact serialization"));
  // Only what the authority makes: a direct key, so no key-wrapping algorithm can be substituted.
  cjose_header_t* header = cjose_jwe_get_protected(parsed.get());
  if (HeaderValue(header, CJOSE_HDR_ALG) != CJOSE_HDR_ALG_DIR ||
      HeaderValue(header, CJOSE_HDR_ENC) != CJOSE_HDR_ENC_A256GCM) {
    return std::unexpected(InvalidArgument("cnf.jwe is not alg \"dir\", enc \"A256GCM\""));
  }
  DEVID_ASSIGN_OR_RETURN(auto kek, own_key.HmacSha256(pki::PeerKekMessage(audience)));
  pki::JosePtr<cjose_jwk_t> jwk(cjose_jwk_create_oct_spec(kek.data(), kek.size(), &err));
  OPENSSL_cleanse(kek.data(), kek.size());
  if (!jwk) return std::unexpected(Internal("opening a session key: cjose cannot make a key"));
  size_t length = 0;
  uint8_t* plain = cjose_jwe_decrypt(parsed.get(), jwk.get(), &length, &err);
  if (plain == nullptr) {
    return std::unexpected(Unauthenticated("cnf.jwe does not decrypt with this device's key"));
  }
  PeerSessionKey key;
  bool right_size = length == key.bytes.size();
  if (right_size) std::copy(plain, plain + length, key.bytes.begin());
  OPENSSL_cleanse(plain, length);
  cjose_get_dealloc()(plain);
  if (!right_size) return std::unexpected(InvalidArgument("cnf.jwe holds no 32-byte key"));
  return key;
}

}  // namespace devid::sdk
