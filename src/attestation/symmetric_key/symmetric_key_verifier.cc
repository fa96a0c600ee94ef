#include "attestation/symmetric_key/symmetric_key_verifier.h"

#include "attestation/device_token.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace devid::attestation {
namespace {

using registry::AttestationType;

// KeyVerifies tells whether the token is signed by the base64 key (false for an empty or
// undecodable key).
bool KeyVerifies(const pki::SasToken& token, const std::string& key_base64) {
  if (key_base64.empty()) return false;
  auto key = ossl::Base64Decode(key_base64);
  return key && pki::VerifySasSignature(token, *key).has_value();
}

bool GroupKeyVerifies(const pki::SasToken& token, const std::string& group_key,
                      std::string_view registration_id) {
  if (group_key.empty()) return false;
  auto derived = pki::DeriveSymmetricKey(group_key, registration_id);
  return derived && KeyVerifies(token, *derived);
}

bool GroupVerifies(const pki::SasToken& token, const registry::EnrollmentGroup& group,
                   std::string_view registration_id) {
  const auto& keys = group.settings.attestation.symmetric_key;
  return GroupKeyVerifies(token, keys.primary_key, registration_id) ||
         GroupKeyVerifies(token, keys.secondary_key, registration_id);
}

Result<VerifiedDevice> Admit(VerifiedDevice device) {
  if (!device.settings().enabled) {
    return std::unexpected(PermissionDenied(
        device.enrollment ? "the enrollment for " + device.registration_id + " is disabled"
                          : "enrollment group " + device.group->enrollment_group_id +
                                " is disabled"));
  }
  return device;
}

}  // namespace

Result<VerifiedDevice> SymmetricKeyVerifier::Verify(std::string_view id_scope,
                                                    std::string_view registration_id,
                                                    std::string_view authorization) {
  auto registration = registry_.GetRegistration(registration_id);
  if (!registration && registration.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(registration.error());
  }
  return Verify(id_scope, registration_id, authorization,
                registration ? &*registration : nullptr);
}

Result<VerifiedDevice> SymmetricKeyVerifier::Verify(std::string_view id_scope,
                                                    std::string_view registration_id,
                                                    std::string_view authorization,
                                                    const registry::Registration* registration) {
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token,
                         ParseDeviceToken(id_scope, registration_id, authorization, clock_));
  const Error no_key = Unauthenticated("SAS token signature does not verify for registration " +
                                       std::string(registration_id));

  VerifiedDevice device;
  device.registration_id = std::string(registration_id);
  device.attestation_type = AttestationType::kSymmetricKey;

  auto enrollment = registry_.GetEnrollment(registration_id);
  if (enrollment) {
    const auto& keys = enrollment->settings.attestation.symmetric_key;
    if (enrollment->settings.attestation.type != AttestationType::kSymmetricKey ||
        !(KeyVerifies(token, keys.primary_key) || KeyVerifies(token, keys.secondary_key))) {
      return std::unexpected(no_key);
    }
    device.enrollment = std::move(*enrollment);
    return Admit(std::move(device));
  }
  if (enrollment.error().code() != ErrorCode::kNotFound) return std::unexpected(enrollment.error());

  // A device that registered through a group before goes straight back to it.
  if (registration != nullptr && !registration->enrollment_group_id.empty()) {
    auto group = registry_.GetEnrollmentGroup(registration->enrollment_group_id);
    if (group && group->settings.attestation.type == AttestationType::kSymmetricKey &&
        GroupVerifies(token, *group, registration_id)) {
      device.group = std::move(*group);
      return Admit(std::move(device));
    }
  }

  DEVID_ASSIGN_OR_RETURN(auto candidates,
                         registry_.FindGroupCandidates(registration_id,
                                                       AttestationType::kSymmetricKey));
  for (auto& group : candidates) {
    if (GroupVerifies(token, group, registration_id)) {
      device.group = std::move(group);
      return Admit(std::move(device));
    }
  }
  return std::unexpected(no_key);
}

}  // namespace devid::attestation
