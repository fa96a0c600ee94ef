#pragma once

// The device SDK's offline check of peer tokens (docs/tokens.md): a device B accepts a peer A
// when the token authority introduced A to B, without asking the authority.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pki/certificate.h"

namespace devid::sdk {

class PinnedJwsVerifier;

// PeerTokenRefusal is why PeerTokenVerifier::Accept refused a token.
enum class PeerTokenRefusal {
  kMalformed,        // not a devid peer token: bad encoding, JSON, typ, crit or claims
  kUnsigned,         // alg "none" or no signature
  kUnknownSigner,    // signed by no pinned token-signer key
  kBadSignature,     // the signature does not verify with the pinned key (tampered, other key)
  kSignerNotValid,   // the pinned certificate has expired or is not valid yet
  kOtherAudience,    // aud names another device or service
  kExpired,          // exp has passed (beyond the allowed clock skew)
  kNotYetValid,      // iat is in the future (beyond the allowed clock skew)
  kTooLong,          // exp - iat is over the configured maximum lifetime
  kWrongHolder,      // proof of possession failed: the TLS peer is not the certificate in cnf
  kScopeNotGranted,  // a required scope word is not in the token's scope
  kReplayed,         // this jti was accepted before
  kReplayCacheFull,  // too many unexpired tokens remembered; refused rather than forgotten
};

// PeerTokenRefusalName returns a stable word for reason ("replayed", "wrong-holder", ...).
std::string_view PeerTokenRefusalName(PeerTokenRefusal reason);

// PeerTokenError is a refusal and a message a technician can act on; never a token or key.
struct PeerTokenError {
  PeerTokenRefusal reason;
  std::string message;
};

// VerifiedPeerToken is an accepted token's claims.
struct VerifiedPeerToken {
  std::string issuer;
  std::string subject;   // the peer's device ID
  std::string audience;  // this device
  std::vector<std::string> scopes;
  std::string jti;
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point expires_at;
};

// kMaxPeerTokenClockSkew bounds the clock skew a device may allow for.
inline constexpr std::chrono::seconds kMaxPeerTokenClockSkew{300};

// PeerTokenVerifierOptions configure PeerTokenVerifier.
struct PeerTokenVerifierOptions {
  std::string audience;                 // this device's ID (or service name): aud must equal it
  std::string signer_certificates_pem;  // the pinned token-signer certificate(s)
  std::chrono::seconds clock_skew{60};  // at most kMaxPeerTokenClockSkew
  // max_lifetime refuses tokens valid longer than this, which also bounds how long a jti is
  // remembered.
  std::chrono::seconds max_lifetime{3600};
  size_t max_replay_entries = 100000;  // unexpired jtis remembered; beyond, tokens are refused
  size_t max_token_bytes = 8 * 1024;
};

// PeerTokenVerifier decides offline whether a TLS peer may act with a token (JWS compact JWT,
// RFC 7519, typ "devid-peer+jwt"): signed by a pinned token-signer certificate valid now, aud this
// device, within iat/exp up to the clock skew, cnf.x5t#S256 (RFC 8705 §3.1) the thumbprint of the
// peer's TLS certificate (whose key the handshake proved), every required scope granted, and its
// jti not accepted before. The replay cache lives in memory, each entry until its token expires.
// Thread-safe.
class PeerTokenVerifier {
 public:
  // Create checks options and keeps a reference to clock, which must outlive the verifier. Fails
  // with kInvalidArgument when the audience is empty, no certificate is given or one is not an
  // ECDSA P-256/P-384 key, or the skew, lifetime or cache size is out of bounds.
  static Result<std::unique_ptr<PeerTokenVerifier>> Create(PeerTokenVerifierOptions options,
                                                           const Clock& clock);
  ~PeerTokenVerifier();

  // Accept verifies token as presented by the TLS peer whose authenticated leaf certificate is
  // peer_certificate, requiring every space-separated word of required_scope ("" = none), and
  // remembers its jti. Every refusal is logged (reason, subject, jti; never the token).
  std::expected<VerifiedPeerToken, PeerTokenError> Accept(std::string_view token,
                                                          const pki::Certificate& peer_certificate,
                                                          std::string_view required_scope);

 private:
  PeerTokenVerifier(PeerTokenVerifierOptions options, std::unique_ptr<PinnedJwsVerifier> signers,
                    const Clock& clock);

  std::expected<VerifiedPeerToken, PeerTokenError> Check(std::string_view token,
                                                         const pki::Certificate& peer_certificate,
                                                         std::string_view required_scope);

  PeerTokenVerifierOptions options_;
  std::unique_ptr<PinnedJwsVerifier> signers_;
  const Clock& clock_;
  std::mutex mutex_;  // guards the replay cache
  std::unordered_map<std::string, std::chrono::system_clock::time_point> seen_;  // jti → forget at
  std::multimap<std::chrono::system_clock::time_point, std::string> expiry_;  // forget at → jti
};

}  // namespace devid::sdk
