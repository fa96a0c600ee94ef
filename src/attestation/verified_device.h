#pragma once

#include <memory>
#include <optional>
#include <string>

#include "pki/certificate.h"
#include "registry/enrollment.h"

namespace devid::attestation {

// VerifiedDevice is what an attestation verifier proved: the registration ID the device holds a
// credential for, and the enrollment (individual or group) that admits it.
struct VerifiedDevice {
  std::string registration_id;
  registry::AttestationType attestation_type = registry::AttestationType::kNone;
  std::optional<registry::Enrollment> enrollment;  // set for an individual enrollment
  std::optional<registry::EnrollmentGroup> group;  // set for a group enrollment
  // device_key is the base64 key the service generated for the device (TPM: the HMAC key of the
  // answered challenge), to store with its registration; "" when it uses its enrollment's key.
  std::string device_key;
  // tpm_storage_root_key is the SRK (base64 TPM2B_PUBLIC) device_key was wrapped for (TPM only).
  std::string tpm_storage_root_key;
  // x509_leaf is the certificate an X.509 device authenticated with, and x509_signer the group
  // signing certificate its chain was validated to (null for an individual enrollment); both null
  // for other attestation types. Shared, as parsed once by the verifier.
  std::shared_ptr<const pki::Certificate> x509_leaf;
  std::shared_ptr<const pki::Certificate> x509_signer;

  // settings returns the matched enrollment's or group's settings.
  const registry::EnrollmentSettings& settings() const {
    return enrollment ? enrollment->settings : group->settings;
  }
};

}  // namespace devid::attestation
