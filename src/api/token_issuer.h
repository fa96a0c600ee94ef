#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/jws_signer.h"

namespace devid::api {

// TokenIssuerOptions are what every peer token carries besides its grant.
struct TokenIssuerOptions {
  std::string issuer;             // "iss": the authority's https:// URL
  std::chrono::seconds ttl{300};  // "exp" - "iat"; short, because a peer cannot revoke a token
};

// PeerTokenGrant is what the token authority decided to grant: sub may use scope at aud, holding
// the key of the certificate whose SHA-256 thumbprint (base64url, RFC 8705 §3.1) is x5t_s256, or,
// for a symmetric device, the session key sealed for the audience in cnf_jwe (RFC 7800 §3.3).
// Exactly one of the two is set.
struct PeerTokenGrant {
  std::string subject;
  std::string audience;
  std::string scope;
  std::string x5t_s256;
  std::string cnf_jwe;
};

// IssuedPeerToken is a signed peer token and the claims the audit log records about it.
struct IssuedPeerToken {
  std::string token;  // the JWT, JWS compact serialization
  std::string jti;
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point expires_at;
};

// TokenIssuer makes peer tokens (docs/tokens.md): JWTs (RFC 7519) typed ca::kPeerTokenType with
// iss, sub, aud, scope, iat, exp, a 128-bit random jti and cnf {"x5t#S256"} (RFC 7800 §3.1,
// RFC 8705 §3.1) or cnf {"jwe"} (§3.3), signed by the token signer. It decides nothing: the caller authorized the
// grant. Thread-safe when signer and random are.
class TokenIssuer {
 public:
  // TokenIssuer keeps references to clock and random; both must outlive it.
  TokenIssuer(ca::JwsSignerSource signer, const Clock& clock, Random& random,
              TokenIssuerOptions options)
      : signer_(std::move(signer)), clock_(clock), random_(random), options_(std::move(options)) {}

  // Issue signs a token for grant, valid from now for options.ttl. Fails with kUnavailable when
  // the token signer is, or as its key store does.
  Result<IssuedPeerToken> Issue(const PeerTokenGrant& grant) const;

 private:
  ca::JwsSignerSource signer_;
  const Clock& clock_;
  Random& random_;
  TokenIssuerOptions options_;
};

}  // namespace devid::api
