#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "devid/peer_token.h"
#include "pki/x5t.h"
#include "sdk/peer_token_session_key.h"
#include "sdk/pinned_jws_verifier.h"

namespace devid::sdk {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

// What a peer token is: its typ as the server's ca::kPeerTokenType.
constexpr JwsKind kPeerTokenKind{.typ = "devid-peer+jwt",
                                 .noun = "token",
                                 .description = "devid peer token",
                                 .signer = "token signer",
                                 .only = "only tokens signed by your token authority are accepted"};

std::unexpected<PeerTokenError> Refuse(PeerTokenRefusal reason, std::string message) {
  return std::unexpected(PeerTokenError{reason, std::move(message)});
}

PeerTokenRefusal FromJwsRefusal(JwsRefusal reason) {
  switch (reason) {
    case JwsRefusal::kMalformed:
      return PeerTokenRefusal::kMalformed;
    case JwsRefusal::kUnsigned:
      return PeerTokenRefusal::kUnsigned;
    case JwsRefusal::kUnknownSigner:
      return PeerTokenRefusal::kUnknownSigner;
    case JwsRefusal::kBadSignature:
      return PeerTokenRefusal::kBadSignature;
    case JwsRefusal::kSignerNotValid:
      return PeerTokenRefusal::kSignerNotValid;
  }
  return PeerTokenRefusal::kMalformed;
}

// Words splits a space-separated scope (RFC 6749 §3.3); empty words are dropped.
std::vector<std::string> Words(std::string_view scope) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < scope.size()) {
    size_t end = std::min(scope.find(' ', start), scope.size());
    if (end > start) words.emplace_back(scope.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

bool IsString(const json& claims, const char* name) {
  return claims.contains(name) && claims[name].is_string();
}

bool IsInteger(const json& claims, const char* name) {
  return claims.contains(name) && claims[name].is_number_integer();
}

}  // namespace

std::string_view PeerTokenRefusalName(PeerTokenRefusal reason) {
  switch (reason) {
    case PeerTokenRefusal::kMalformed:
      return "malformed";
    case PeerTokenRefusal::kUnsigned:
      return "unsigned";
    case PeerTokenRefusal::kUnknownSigner:
      return "unknown-signer";
    case PeerTokenRefusal::kBadSignature:
      return "bad-signature";
    case PeerTokenRefusal::kSignerNotValid:
      return "signer-not-valid";
    case PeerTokenRefusal::kOtherAudience:
      return "other-audience";
    case PeerTokenRefusal::kExpired:
      return "expired";
    case PeerTokenRefusal::kNotYetValid:
      return "not-yet-valid";
    case PeerTokenRefusal::kTooLong:
      return "too-long";
    case PeerTokenRefusal::kWrongHolder:
      return "wrong-holder";
    case PeerTokenRefusal::kSealedForAnother:
      return "sealed-for-another";
    case PeerTokenRefusal::kScopeNotGranted:
      return "scope-not-granted";
    case PeerTokenRefusal::kReplayed:
      return "replayed";
    case PeerTokenRefusal::kReplayCacheFull:
      return "replay-cache-full";
  }
  return "unknown";
}

PeerTokenVerifier::PeerTokenVerifier(PeerTokenVerifierOptions options,
                                     std::unique_ptr<PinnedJwsVerifier> signers, const Clock& clock)
    : options_(std::move(options)), signers_(std::move(signers)), clock_(clock) {}

PeerTokenVerifier::~PeerTokenVerifier() = default;

Result<std::unique_ptr<PeerTokenVerifier>> PeerTokenVerifier::Create(
    PeerTokenVerifierOptions options, const Clock& clock) {
  if (options.audience.empty()) {
    return std::unexpected(InvalidArgument("verifying peer tokens: this device's ID is empty"));
  }
  if (options.clock_skew < std::chrono::seconds(0) || options.clock_skew > kMaxPeerTokenClockSkew) {
    return std::unexpected(InvalidArgument("verifying peer tokens: the clock skew must be 0 to " +
                                           std::to_string(kMaxPeerTokenClockSkew.count()) +
                                           " seconds"));
  }
  if (options.max_lifetime < std::chrono::seconds(1) ||
      options.max_lifetime > std::chrono::hours(24)) {
    return std::unexpected(
        InvalidArgument("verifying peer tokens: the maximum lifetime must be 1 s to 24 h"));
  }
  if (options.max_replay_entries == 0) {
    return std::unexpected(
        InvalidArgument("verifying peer tokens: the replay cache must hold at least one entry"));
  }
  auto signers =
      PinnedJwsVerifier::Create(options.signer_certificates_pem, "verifying peer tokens");
  if (!signers) return std::unexpected(signers.error());
  return std::unique_ptr<PeerTokenVerifier>(
      new PeerTokenVerifier(std::move(options), std::move(*signers), clock));
}

std::expected<VerifiedPeerToken, PeerTokenError> PeerTokenVerifier::Accept(
    std::string_view token, const pki::Certificate& peer_certificate,
    std::string_view required_scope) {
  auto checked = Check(token, &peer_certificate, nullptr, required_scope);
  if (!checked) {
    spdlog::warn("peer token refused ({}) by {} from {}: {}",
                 PeerTokenRefusalName(checked.error().reason), options_.audience,
                 peer_certificate.SubjectCommonName(), checked.error().message);
  } else {
    spdlog::info("peer token {} of {} accepted by {}", checked->jti, checked->subject,
                 options_.audience);
  }
  return checked;
}

std::expected<VerifiedPeerToken, PeerTokenError> PeerTokenVerifier::AcceptWithSessionKey(
    std::string_view token, std::span<const uint8_t> challenge, std::span<const uint8_t> proof,
    SasCredential& own_key, std::string_view required_scope) {
  SymmetricProof symmetric{.challenge = challenge, .proof = proof, .own_key = own_key};
  auto checked = Check(token, nullptr, &symmetric, required_scope);
  if (!checked) {
    spdlog::warn("peer token refused ({}) by {} from a symmetric peer: {}",
                 PeerTokenRefusalName(checked.error().reason), options_.audience,
                 checked.error().message);
  } else {
    spdlog::info("peer token {} of {} accepted by {} (session key)", checked->jti,
                 checked->subject, options_.audience);
  }
  return checked;
}

std::expected<void, PeerTokenError> PeerTokenVerifier::CheckSymmetricHolder(
    const std::string& jwe, const VerifiedPeerToken& claims, const SymmetricProof& symmetric) {
  auto session_key = OpenSessionKey(jwe, symmetric.own_key, options_.audience);
  if (!session_key) {
    return Refuse(PeerTokenRefusal::kSealedForAnother,
                  "the session key in the token of " + claims.subject +
                      " does not open with this device's key: " + session_key.error().message());
  }
  if (symmetric.challenge.size() != kPeerChallengeBytes) {
    return Refuse(PeerTokenRefusal::kWrongHolder,
                  "the challenge must be " + std::to_string(kPeerChallengeBytes) + " bytes");
  }
  std::array<uint8_t, 32> expected =
      ProveWithSessionKey(*session_key, symmetric.challenge, claims.subject, options_.audience);
  bool holds = symmetric.proof.size() == expected.size() &&
               CRYPTO_memcmp(symmetric.proof.data(), expected.data(), expected.size()) == 0;
  OPENSSL_cleanse(expected.data(), expected.size());
  if (!holds) {
    return Refuse(PeerTokenRefusal::kWrongHolder,
                  "the peer's proof is not made with the session key of the token of " +
                      claims.subject);
  }
  return {};
}

std::expected<VerifiedPeerToken, PeerTokenError> PeerTokenVerifier::Check(
    std::string_view token, const pki::Certificate* peer_certificate,
    const SymmetricProof* symmetric, std::string_view required_scope) {
  if (token.size() > options_.max_token_bytes) {
    return Refuse(PeerTokenRefusal::kMalformed,
                  "the token is " + std::to_string(token.size()) + " bytes, over the " +
                      std::to_string(options_.max_token_bytes) + "-byte limit");
  }
  system_clock::time_point now = clock_.Now();
  auto verified = signers_->Verify(token, kPeerTokenKind, now);
  if (!verified) {
    return Refuse(FromJwsRefusal(verified.error().reason), verified.error().message);
  }
  json claims = json::parse(verified->payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object() || !IsString(claims, "iss") || !IsString(claims, "sub") ||
      !IsString(claims, "aud") || !IsString(claims, "scope") || !IsString(claims, "jti") ||
      !IsInteger(claims, "iat") || !IsInteger(claims, "exp") || !claims.contains("cnf") ||
      !claims["cnf"].is_object()) {
    return Refuse(PeerTokenRefusal::kMalformed,
                  "the token's claims lack iss, sub, aud, scope, jti, iat, exp or cnf");
  }
  // The confirmation method must be the one the peer presents with: a certificate or a session
  // key, never either.
  const char* confirmation = peer_certificate != nullptr ? "x5t#S256" : "jwe";
  if (!IsString(claims["cnf"], confirmation) || claims["cnf"].size() != 1) {
    return Refuse(PeerTokenRefusal::kMalformed,
                  std::string("the token's cnf is not {\"") + confirmation + "\"}: " +
                      (peer_certificate != nullptr
                           ? "a token with a session key is presented with a proof, not over mTLS"
                           : "a token bound to a certificate is presented over mTLS"));
  }
  VerifiedPeerToken accepted;
  accepted.issuer = claims["iss"].get<std::string>();
  accepted.subject = claims["sub"].get<std::string>();
  accepted.audience = claims["aud"].get<std::string>();
  accepted.scopes = Words(claims["scope"].get<std::string>());
  accepted.jti = claims["jti"].get<std::string>();
  accepted.issued_at = system_clock::time_point(std::chrono::seconds(claims["iat"].get<int64_t>()));
  accepted.expires_at =
      system_clock::time_point(std::chrono::seconds(claims["exp"].get<int64_t>()));
  if (accepted.jti.empty()) return Refuse(PeerTokenRefusal::kMalformed, "the token's jti is empty");
  if (accepted.audience != options_.audience) {
    return Refuse(PeerTokenRefusal::kOtherAudience, "the token is for \"" + accepted.audience +
                                                        "\", not this device (\"" +
                                                        options_.audience + "\")");
  }
  if (now > accepted.expires_at + options_.clock_skew) {
    return Refuse(PeerTokenRefusal::kExpired, "the token of " + accepted.subject + " expired at " +
                                                  FormatUtc(accepted.expires_at) + " (now " +
                                                  FormatUtc(now) + ")");
  }
  if (accepted.issued_at > now + options_.clock_skew) {
    return Refuse(PeerTokenRefusal::kNotYetValid, "the token of " + accepted.subject +
                                                      " is dated " + FormatUtc(accepted.issued_at) +
                                                      ", in the future (now " + FormatUtc(now) +
                                                      "): check this device's clock");
  }
  if (accepted.expires_at - accepted.issued_at > options_.max_lifetime) {
    return Refuse(PeerTokenRefusal::kTooLong,
                  "the token of " + accepted.subject + " is valid for longer than the " +
                      std::to_string(options_.max_lifetime.count()) + " s this device allows");
  }
  if (peer_certificate != nullptr) {
    // RFC 8705 §3.1 / RFC 7800 §3.1: the handshake proved the peer holds its certificate's key;
    // the token must be bound to that certificate.
    std::string holder = pki::X5tS256(*peer_certificate);
    std::string bound = claims["cnf"]["x5t#S256"].get<std::string>();
    if (holder.size() != bound.size() ||
        CRYPTO_memcmp(holder.data(), bound.data(), holder.size()) != 0) {
      return Refuse(PeerTokenRefusal::kWrongHolder,
                    "the token of " + accepted.subject +
                        " is bound to another certificate than the one the peer presented (" +
                        peer_certificate->SubjectName() + ")");
    }
  } else if (auto holds = CheckSymmetricHolder(claims["cnf"]["jwe"].get<std::string>(), accepted,
                                               *symmetric);
             !holds) {
    return std::unexpected(holds.error());
  }
  for (const std::string& word : Words(required_scope)) {
    if (std::find(accepted.scopes.begin(), accepted.scopes.end(), word) == accepted.scopes.end()) {
      return Refuse(PeerTokenRefusal::kScopeNotGranted,
                    "the token of " + accepted.subject + " does not grant scope \"" + word + "\"");
    }
  }
  std::lock_guard lock(mutex_);
  // Forget jtis whose tokens can no longer pass the expiry check.
  while (!expiry_.empty() && expiry_.begin()->first < now) {
    seen_.erase(expiry_.begin()->second);
    expiry_.erase(expiry_.begin());
  }
  if (seen_.contains(accepted.jti)) {
    return Refuse(PeerTokenRefusal::kReplayed,
                  "token " + accepted.jti + " of " + accepted.subject + " was already accepted");
  }
  if (seen_.size() >= options_.max_replay_entries) {
    return Refuse(PeerTokenRefusal::kReplayCacheFull,
                  "this device remembers " + std::to_string(seen_.size()) +
                      " unexpired tokens, its limit; try again when some expire");
  }
  system_clock::time_point forget_at = accepted.expires_at + options_.clock_skew;
  seen_.emplace(accepted.jti, forget_at);
  expiry_.emplace(forget_at, accepted.jti);
  return accepted;
}

}  // namespace devid::sdk
