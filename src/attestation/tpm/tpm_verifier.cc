#include "attestation/tpm/tpm_verifier.h"

#include <openssl/crypto.h>

#include "attestation/device_token.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "tpm/credential.h"
#include "tpm/pcr_policy.h"
#include "tpm/public_area.h"

namespace devid::attestation {
namespace {

using registry::AttestationType;

constexpr size_t kDeviceKeyBytes = 32;  // the HMAC-SHA256 key K (protocol notes §4.4)

Error NotEnrolled(std::string_view registration_id) {
  return Unauthenticated("no TPM enrollment for registration " + std::string(registration_id) +
                         " holds this endorsement key");
}

Result<tpm::RsaPublic> ParseRequestKey(std::string_view base64, std::string_view field) {
  auto key = tpm::ParseRsaPublicBase64(base64);
  if (!key)
    return std::unexpected(key.error().WithContext(std::string("tpm.") + std::string(field)));
  return key;
}

Result<std::string> BuildBlob(const tpm::RsaPublic& ek, const tpm::RsaPublic& srk,
                              std::span<const uint8_t> key, Random& random) {
  DEVID_ASSIGN_OR_RETURN(tpm::Bytes blob, tpm::BuildActivationBlob(ek, srk, key, random));
  return ossl::Base64Encode(blob);
}

bool KeyVerifies(const pki::SasToken& token, std::string_view key_base64) {
  if (key_base64.empty()) return false;
  auto key = ossl::Base64Decode(key_base64);
  if (!key) return false;
  bool ok = pki::VerifySasSignature(token, *key).has_value();
  OPENSSL_cleanse(key->data(), key->size());
  return ok;
}

Result<VerifiedDevice> Admit(registry::Enrollment enrollment) {
  if (!enrollment.settings.enabled) {
    return std::unexpected(
        PermissionDenied("the enrollment for " + enrollment.registration_id + " is disabled"));
  }
  VerifiedDevice device;
  device.registration_id = enrollment.registration_id;
  device.attestation_type = AttestationType::kTpm;
  device.enrollment = std::move(enrollment);
  return device;
}

}  // namespace

// Match is an enrollment that holds the device's EK, with the keys parsed, the SRK to wrap for
// and the enrollment's measured-boot policy, if any.
struct TpmVerifier::Match {
  registry::Enrollment enrollment;
  tpm::RsaPublic ek;
  tpm::RsaPublic srk;
  std::string srk_base64;
  std::optional<tpm::PcrPolicy> pcr_policy;
};

// MatchEnrollment finds the TPM enrollment whose EK is the one the device named (protocol notes
// §4.1: compare the public keys, not the encodings) and picks the SRK to wrap for: the one in the
// request, which must be the enrolled one when the enrollment holds an SRK.
Result<TpmVerifier::Match> TpmVerifier::MatchEnrollment(std::string_view registration_id,
                                                        const TpmKeys& keys) {
  Match m;
  DEVID_ASSIGN_OR_RETURN(m.ek, ParseRequestKey(keys.endorsement_key, "endorsementKey"));
  auto enrollment = registry_.GetEnrollment(registration_id);
  if (!enrollment) {
    if (enrollment.error().code() == ErrorCode::kNotFound) {
      return std::unexpected(NotEnrolled(registration_id));
    }
    return std::unexpected(enrollment.error());
  }
  const registry::TpmAttestation& enrolled = enrollment->settings.attestation.tpm;
  if (enrollment->settings.attestation.type != AttestationType::kTpm) {
    return std::unexpected(NotEnrolled(registration_id));
  }
  auto enrolled_ek = tpm::ParseRsaPublicBase64(enrolled.endorsement_key);
  if (!enrolled_ek || !enrolled_ek->SameKey(m.ek)) {
    return std::unexpected(NotEnrolled(registration_id));
  }

  m.srk_base64 = keys.storage_root_key.empty() ? enrolled.storage_root_key : keys.storage_root_key;
  if (m.srk_base64.empty()) {
    return std::unexpected(InvalidArgument("tpm.storageRootKey is required: the enrollment for " +
                                           std::string(registration_id) +
                                           " holds none, and the device key is wrapped for it"));
  }
  DEVID_ASSIGN_OR_RETURN(m.srk, ParseRequestKey(m.srk_base64, "storageRootKey"));
  if (!enrolled.storage_root_key.empty() && m.srk_base64 != enrolled.storage_root_key) {
    auto enrolled_srk = tpm::ParseRsaPublicBase64(enrolled.storage_root_key);
    if (!enrolled_srk || !enrolled_srk->SameKey(m.srk)) {
      return std::unexpected(Unauthenticated("the storage root key is not the one enrolled for " +
                                             std::string(registration_id)));
    }
  }
  if (!enrolled.pcr_policy.empty()) {
    auto policy = tpm::ParsePcrPolicy(enrolled.pcr_policy);
    if (!policy) {
      return std::unexpected(Internal("the stored PCR policy of " + std::string(registration_id) +
                                      " does not parse: " + policy.error().message()));
    }
    m.pcr_policy = std::move(*policy);
  }
  m.enrollment = std::move(*enrollment);
  DEVID_TRY(CheckEkCertificate(m, keys));
  return m;
}

// CheckEkCertificate holds the device to the EK certificate policy (TCG EK Credential Profile):
// required by the fleet or the enrollment, and checked whenever one is sent and roots exist.
Status TpmVerifier::CheckEkCertificate(const Match& match, const TpmKeys& keys) const {
  const std::string& id = match.enrollment.registration_id;
  bool required =
      ek_policy_.required || match.enrollment.settings.attestation.tpm.require_ek_certificate;
  if (keys.endorsement_key_certificate.empty()) {
    if (!required) return Ok();
    return std::unexpected(Unauthenticated(
        "an EK certificate is required for registration " + id +
        ": send tpm.endorsementKeyCertificate (base64 DER, as read from the TPM's NV)"));
  }
  if (!ek_policy_.roots) {
    if (!required) return Ok();
    return std::unexpected(Unauthenticated(
        "an EK certificate is required for registration " + id +
        " but this service has no TPM manufacturer roots configured to validate it"));
  }
  auto der = ossl::Base64Decode(keys.endorsement_key_certificate);
  if (!der) {
    return std::unexpected(InvalidArgument("tpm.endorsementKeyCertificate is not base64 DER"));
  }
  return VerifyEkCertificate(*der, match.ek, *ek_policy_.roots, clock_.Now());
}

Result<TpmChallenge> TpmVerifier::Challenge(std::string_view registration_id,
                                             const TpmKeys& keys) {
  DEVID_ASSIGN_OR_RETURN(Match match, MatchEnrollment(registration_id, keys));
  std::optional<tpm::RsaPublic> ak;
  if (match.pcr_policy) {
    if (keys.quote.attestation_key.empty()) {
      return std::unexpected(InvalidArgument(
          "tpm.attestationKey is required: the enrollment for " + std::string(registration_id) +
          " has a PCR policy, so registration needs a quote signed by an attestation key"));
    }
    DEVID_ASSIGN_OR_RETURN(ak, ParseAttestationKey(keys.quote.attestation_key));
  }
  std::vector<uint8_t> key = random_.Bytes(kDeviceKeyBytes);
  TpmChallenge answer;
  if (ak) {
    // Same round as the activation blob (docs/device-provisioning.md, measured boot).
    auto quote = MakeQuoteChallenge(match.ek, *ak, key, random_);
    if (!quote) {
      OPENSSL_cleanse(key.data(), key.size());
      return std::unexpected(quote.error());
    }
    answer.quote = std::move(*quote);
  }
  auto blob = BuildBlob(match.ek, match.srk, key, random_);
  registry::Challenge challenge{std::string(registration_id), ossl::Base64Encode(key),
                                clock_.Now() + challenge_ttl_};
  OPENSSL_cleanse(key.data(), key.size());
  if (!blob) {
    OPENSSL_cleanse(challenge.secret.data(), challenge.secret.size());
    return std::unexpected(blob.error().WithContext("building the TPM activation blob"));
  }
  auto stored =
      registry_.PutChallenge(challenge, registry::Actor{"device:" + std::string(registration_id)});
  OPENSSL_cleanse(challenge.secret.data(), challenge.secret.size());
  if (!stored) return std::unexpected(stored.error());
  answer.authentication_key = std::move(*blob);
  return answer;
}

Result<VerifiedDevice> TpmVerifier::VerifyChallengeResponse(std::string_view id_scope,
                                                            std::string_view registration_id,
                                                            std::string_view authorization,
                                                            const TpmKeys& keys) {
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token,
                         ParseDeviceToken(id_scope, registration_id, authorization, clock_));
  DEVID_ASSIGN_OR_RETURN(Match match, MatchEnrollment(registration_id, keys));
  auto challenge = registry_.GetChallenge(registration_id);
  if (!challenge) {
    if (challenge.error().code() != ErrorCode::kNotFound) {
      return std::unexpected(challenge.error());
    }
    return std::unexpected(Unauthenticated(
        "no pending TPM challenge for registration " + std::string(registration_id) +
        " (never issued, expired or already answered); register without Authorization first"));
  }
  if (!KeyVerifies(token, challenge->secret)) {
    OPENSSL_cleanse(challenge->secret.data(), challenge->secret.size());
    return std::unexpected(Unauthenticated(
        "SAS token signature does not verify with the TPM challenge key for registration " +
        std::string(registration_id)));
  }
  if (match.pcr_policy) {
    auto key = ossl::Base64Decode(challenge->secret);
    if (!key) return std::unexpected(Internal("the pending challenge key is not base64"));
    Status quoted = VerifyQuote(*match.pcr_policy, keys.quote, *key);
    OPENSSL_cleanse(key->data(), key->size());
    if (!quoted) {
      OPENSSL_cleanse(challenge->secret.data(), challenge->secret.size());
      return std::unexpected(quoted.error());
    }
  }
  DEVID_ASSIGN_OR_RETURN(VerifiedDevice device, Admit(std::move(match.enrollment)));
  device.device_key = std::move(challenge->secret);
  device.tpm_storage_root_key = std::move(match.srk_base64);
  return device;
}

Result<VerifiedDevice> TpmVerifier::VerifyRegistered(std::string_view id_scope,
                                                     const registry::Registration& registration,
                                                     std::string_view authorization) {
  const std::string& id = registration.registration_id;
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token,
                         ParseDeviceToken(id_scope, id, authorization, clock_));
  const Error no_key =
      Unauthenticated("SAS token signature does not verify for registration " + id);
  if (!KeyVerifies(token, registration.device_key)) return std::unexpected(no_key);
  auto enrollment = registry_.GetEnrollment(id);
  if (!enrollment) {
    if (enrollment.error().code() != ErrorCode::kNotFound) {
      return std::unexpected(enrollment.error());
    }
    return std::unexpected(no_key);
  }
  if (enrollment->settings.attestation.type != AttestationType::kTpm) {
    return std::unexpected(no_key);
  }
  DEVID_ASSIGN_OR_RETURN(VerifiedDevice device, Admit(std::move(*enrollment)));
  device.device_key = registration.device_key;
  device.tpm_storage_root_key = registration.tpm_storage_root_key;
  return device;
}

Result<std::string> TpmVerifier::AuthenticationKey(const registry::Enrollment& enrollment,
                                                   const registry::Registration& registration) {
  DEVID_ASSIGN_OR_RETURN(
      tpm::RsaPublic ek,
      tpm::ParseRsaPublicBase64(enrollment.settings.attestation.tpm.endorsement_key));
  DEVID_ASSIGN_OR_RETURN(tpm::RsaPublic srk,
                         tpm::ParseRsaPublicBase64(registration.tpm_storage_root_key));
  auto key = ossl::Base64Decode(registration.device_key);
  if (!key)
    return std::unexpected(
        Internal("the stored device key of " + registration.registration_id + " is not base64"));
  auto blob = BuildBlob(ek, srk, *key, random_);
  OPENSSL_cleanse(key->data(), key->size());
  return blob;
}

}  // namespace devid::attestation
