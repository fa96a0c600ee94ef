#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "attestation/tpm/ek_certificate.h"
#include "attestation/tpm/measured_boot.h"
#include "attestation/verified_device.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::attestation {

// TpmKeys are what a TPM device sends in its registration body (`tpm`, protocol notes §4.1):
// base64 TPM2B_PUBLIC; storage_root_key may be "" when the enrollment holds it. The devid
// extensions: endorsement_key_certificate (base64 DER, from TPM NV) and the measured-boot
// evidence (its attestation_key in both requests, the rest in the challenge response).
struct TpmKeys {
  std::string endorsement_key;
  std::string storage_root_key;
  std::string endorsement_key_certificate;
  QuoteEvidence quote;
};

// EkCertificatePolicy is the fleet's EK certificate policy: required makes every TPM enrollment
// require one (an enrollment can also require it alone); roots are the TPM manufacturer CAs
// (null = none configured: every certificate is refused).
struct EkCertificatePolicy {
  bool required = false;
  std::shared_ptr<const EkManufacturerRoots> roots;
};

// TpmChallenge is the 401 answer's content: the activation blob and, when the enrollment has a
// PCR policy, the measured-boot challenge.
struct TpmChallenge {
  std::string authentication_key;
  std::optional<QuoteChallenge> quote;
};

// TpmVerifier runs the DPS TPM endorsement-key challenge (protocol notes §4.2) for individual
// TPM enrollments:
//   1. Challenge: the device names its EK (and SRK); when an enrolled TPM enrollment for the
//      registration ID holds the same EK, the verifier makes a fresh random HMAC key K, stores it
//      as the registration ID's pending challenge (single use, expiring after challenge_ttl), and
//      returns the activation blob that only that TPM can unwrap (tpm/credential.h).
//   2. VerifyChallengeResponse: the device's SAS token must verify with the pending K; then K
//      becomes the device key. The registry consumes the challenge when the registration is
//      saved, so a replay finds none.
//   3. VerifyRegistered: later requests (operation polls) verify against the key stored with the
//      registration.
// Every refusal of an unknown registration ID, a non-TPM enrollment or a different EK has the
// same message, so the answer does not tell which. Both requests of the challenge are also held
// to the enrollment's devid extensions: the EK certificate (ek_certificate.h) in both, the
// measured-boot quote (measured_boot.h) in the response.
class TpmVerifier {
 public:
  static constexpr std::chrono::seconds kDefaultChallengeTtl{300};

  // The verifier keeps references to registry, clock and random; they must outlive it.
  TpmVerifier(registry::Registry& registry, const Clock& clock, Random& random,
              std::chrono::seconds challenge_ttl = kDefaultChallengeTtl,
              EkCertificatePolicy ek_policy = {})
      : registry_(registry),
        clock_(clock),
        random_(random),
        challenge_ttl_(challenge_ttl),
        ek_policy_(std::move(ek_policy)) {}

  // Challenge returns the base64 activation blob for registration_id (and the measured-boot
  // challenge when the enrollment has a PCR policy) and stores its key as the pending challenge.
  // Fails with kInvalidArgument (a key that is not an RSA TPM2B_PUBLIC, no SRK in the request or
  // the enrollment, no or no valid tpm.attestationKey under a PCR policy), kUnauthenticated (not
  // enrolled with this EK; an SRK that differs from the enrolled one; an EK certificate missing
  // when required, not valid to a manufacturer root, or for another key) or a store error.
  Result<TpmChallenge> Challenge(std::string_view registration_id, const TpmKeys& keys);

  // VerifyChallengeResponse checks a register request that answers a challenge: the EK still
  // matches the enrollment and authorization is a DPS SAS token signed with the pending
  // challenge's key, and under a PCR policy the quote verifies (VerifyQuote). Returns the device
  // with device_key = that key. Fails with kUnauthenticated (no pending challenge — never issued,
  // expired or used —, bad token, wrong key, EK certificate, measured boot),
  // kPermissionDenied (the enrollment is disabled) or a store error.
  Result<VerifiedDevice> VerifyChallengeResponse(std::string_view id_scope,
                                                 std::string_view registration_id,
                                                 std::string_view authorization,
                                                 const TpmKeys& keys);

  // VerifyRegistered checks a request from a registered TPM device: authorization must be signed
  // with registration.device_key and the TPM enrollment must still exist. Fails like
  // VerifyChallengeResponse.
  Result<VerifiedDevice> VerifyRegistered(std::string_view id_scope,
                                          const registry::Registration& registration,
                                          std::string_view authorization);

  // AuthenticationKey returns a fresh activation blob (base64) wrapping the registration's
  // device key for the enrolled EK and the registration's SRK: registrationState.tpm
  // .authenticationKey of the final answer (protocol notes §4.2 step 4).
  Result<std::string> AuthenticationKey(const registry::Enrollment& enrollment,
                                        const registry::Registration& registration);

 private:
  struct Match;
  Result<Match> MatchEnrollment(std::string_view registration_id, const TpmKeys& keys);
  Status CheckEkCertificate(const Match& match, const TpmKeys& keys) const;

  registry::Registry& registry_;
  const Clock& clock_;
  Random& random_;
  std::chrono::seconds challenge_ttl_;
  EkCertificatePolicy ek_policy_;
};

}  // namespace devid::attestation
