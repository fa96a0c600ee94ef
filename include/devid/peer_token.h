#pragma once

// The device SDK's offline check of peer tokens (docs/tokens.md): a device B accepts a peer A
// when the token authority introduced A to B, without asking the authority.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "devid/credential.h"
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
  kWrongHolder,      // proof of possession failed: the TLS peer is not the certificate in cnf,
                     // or the MAC over the challenge is not made with the token's session key
  kSealedForAnother,  // cnf.jwe does not open with this device's key (or is not dir/A256GCM)
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

// PeerSessionKey is the 256-bit key the token authority shares between a symmetric device A (in
// its answer) and B (sealed in the token's cnf.jwe). Its bytes are cleansed when it goes.
class PeerSessionKey {
 public:
  PeerSessionKey() = default;
  PeerSessionKey(const PeerSessionKey& other) = default;
  PeerSessionKey& operator=(const PeerSessionKey& other) = default;
  ~PeerSessionKey();

  // FromBase64 reads the authority's "session_key". Fails with kInvalidArgument unless it is
  // standard base64 of 32 bytes.
  static Result<PeerSessionKey> FromBase64(std::string_view text);
  // ToBase64 is the form FromBase64 reads (to store it in a 0600 file).
  std::string ToBase64() const;

  std::array<uint8_t, 32> bytes{};
};

// kPeerChallengeBytes is the size of B's challenge.
inline constexpr size_t kPeerChallengeBytes = 32;

// NewPeerChallenge returns kPeerChallengeBytes from the CSPRNG: B sends a fresh one to A for each
// token presented, and checks A's proof against that challenge only.
std::array<uint8_t, kPeerChallengeBytes> NewPeerChallenge();

// ProveWithSessionKey is A's answer to B's challenge: HMAC-SHA256(session key, challenge ||
// subject || 0x00 || audience), subject being A's device ID and audience B's (the zero byte keeps
// the two IDs apart).
std::array<uint8_t, 32> ProveWithSessionKey(const PeerSessionKey& key,
                                            std::span<const uint8_t> challenge,
                                            std::string_view subject, std::string_view audience);

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
// peer's TLS certificate (whose key the handshake proved) — or, for symmetric devices, cnf.jwe
// holding a session key the peer proves with a MAC over this device's challenge — every required
// scope granted, and its jti not accepted before. The replay cache lives in memory, each entry until its token expires.
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

  // AcceptWithSessionKey verifies a symmetric token (cnf.jwe, RFC 7800 §3.3) presented with
  // proof, A's answer to challenge (which this device issued with NewPeerChallenge for this
  // presentation): own_key, this device's SAS key, derives the key-encryption key
  // (HmacSha256("devid peer kek" || audience)) that opens the session key, and proof must equal
  // ProveWithSessionKey(session key, challenge, sub, audience), compared in constant time. Every
  // other check, the logging and the jti cache are as for Accept. A key-store failure refuses
  // with kSealedForAnother and its message.
  std::expected<VerifiedPeerToken, PeerTokenError> AcceptWithSessionKey(
      std::string_view token, std::span<const uint8_t> challenge, std::span<const uint8_t> proof,
      SasCredential& own_key, std::string_view required_scope);

 private:
  // SymmetricProof is what AcceptWithSessionKey checks the holder with.
  struct SymmetricProof {
    std::span<const uint8_t> challenge;
    std::span<const uint8_t> proof;
    SasCredential& own_key;
  };

  PeerTokenVerifier(PeerTokenVerifierOptions options, std::unique_ptr<PinnedJwsVerifier> signers,
                    const Clock& clock);

  // Check verifies token; exactly one of peer_certificate and symmetric proves the holder.
  std::expected<VerifiedPeerToken, PeerTokenError> Check(std::string_view token,
                                                         const pki::Certificate* peer_certificate,
                                                         const SymmetricProof* symmetric,
                                                         std::string_view required_scope);
  // CheckSymmetricHolder opens cnf.jwe with this device's key and checks the proof.
  std::expected<void, PeerTokenError> CheckSymmetricHolder(const std::string& jwe,
                                                           const VerifiedPeerToken& claims,
                                                           const SymmetricProof& symmetric);

  PeerTokenVerifierOptions options_;
  std::unique_ptr<PinnedJwsVerifier> signers_;
  const Clock& clock_;
  std::mutex mutex_;  // guards the replay cache
  std::unordered_map<std::string, std::chrono::system_clock::time_point> seen_;  // jti → forget at
  std::multimap<std::chrono::system_clock::time_point, std::string> expiry_;  // forget at → jti
};

}  // namespace devid::sdk
