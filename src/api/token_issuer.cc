#include "api/token_issuer.h"

#include <nlohmann/json.hpp>

#include "ossl/base64.h"

namespace devid::api {
namespace {

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<IssuedPeerToken> TokenIssuer::Issue(const PeerTokenGrant& grant) const {
  auto signer = signer_();
  if (!signer) return std::unexpected(signer.error().WithContext("issuing a peer token"));
  IssuedPeerToken issued;
  // RFC 7519 §4.1.7: jti must not collide; 128 random bits make a collision negligible, so
  // peers can keep replay caches keyed by it.
  issued.jti = ossl::Base64UrlEncode(random_.Bytes(16));
  // JWT times are whole seconds (NumericDate, RFC 7519 §2); the token says what the peer sees.
  issued.issued_at = std::chrono::time_point_cast<std::chrono::seconds>(clock_.Now());
  issued.expires_at = issued.issued_at + options_.ttl;
  nlohmann::ordered_json claims = {{"iss", options_.issuer},
                                   {"sub", grant.subject},
                                   {"aud", grant.audience},
                                   {"scope", grant.scope},
                                   {"iat", UnixSeconds(issued.issued_at)},
                                   {"exp", UnixSeconds(issued.expires_at)},
                                   {"jti", issued.jti}};
  if (grant.cnf_jwe.empty()) {
    claims["cnf"] = {{"x5t#S256", grant.x5t_s256}};
  } else {
    claims["cnf"] = {{"jwe", grant.cnf_jwe}};
  }
  auto token = (*signer)->Sign(claims.dump());
  if (!token) return std::unexpected(token.error().WithContext("issuing a peer token"));
  issued.token = std::move(*token);
  return issued;
}

}  // namespace devid::api
