#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"

namespace devid::sdk {

// JwsRefusal is why PinnedJwsVerifier::Verify refused a JWS.
enum class JwsRefusal {
  kMalformed,       // not a JWS of the expected kind: bad encoding, JSON, typ or crit
  kUnsigned,        // alg "none" or no signature
  kUnknownSigner,   // signed by no pinned certificate's key
  kBadSignature,    // the signature does not verify with the named pinned key
  kSignerNotValid,  // the pinned certificate has expired or is not valid yet
};

// JwsRefused is a refusal and a message naming the kind of JWS; never key material.
struct JwsRefused {
  JwsRefusal reason;
  std::string message;
};

// JwsKind says what a JWS must be and how messages name it.
struct JwsKind {
  std::string_view typ;          // the required "typ" (RFC 8725 §3.11), e.g. "devid-command+jws"
  std::string_view noun;         // "command", "token"
  std::string_view description;  // "devid command", "devid peer token"
  std::string_view signer;       // "command signer", "token signer"
  std::string_view only;         // why unsigned ones are refused: "only commands signed by ..."
};

// VerifiedJws is a JWS whose signature verified: its payload and the pinned certificate whose
// key signed it (owned by the verifier).
struct VerifiedJws {
  std::string payload;
  const pki::Certificate* signer = nullptr;
};

// PinnedJwsVerifier checks compact JWS (RFC 7515 §7.1) against pinned ECDSA P-256/P-384 signer
// certificates, as the server's ca::JwsSigner makes them: the header's x5t#S256 names the
// certificate, the pinned key decides the algorithm (RFC 8725 §3.1), and an unnamed certificate
// is tried by signature among the pinned ones valid now (a renewed certificate for the same key).
// Thread-safe: Verify only reads.
class PinnedJwsVerifier {
 public:
  // Create loads every certificate in certificates_pem. Fails with kInvalidArgument, message
  // prefixed by context ("verifying commands"), when there is none or one's key is not ECDSA
  // P-256 or P-384.
  static Result<std::unique_ptr<PinnedJwsVerifier>> Create(std::string_view certificates_pem,
                                                           std::string_view context);
  ~PinnedJwsVerifier();

  // Verify checks jws (trailing whitespace ignored) as a kind at now and returns its payload.
  std::expected<VerifiedJws, JwsRefused> Verify(std::string_view jws, const JwsKind& kind,
                                                std::chrono::system_clock::time_point now) const;

 private:
  struct Signer;
  explicit PinnedJwsVerifier(std::vector<Signer> signers);

  std::vector<Signer> signers_;
};

}  // namespace devid::sdk
