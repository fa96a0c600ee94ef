#pragma once

#include <string>

namespace devid::registry {

// AttestationType is how a device proves its identity (DPS `attestation.type`).
enum class AttestationType { kNone, kSymmetricKey, kX509, kTpm };

// SymmetricKeyAttestation holds base64 keys: an individual enrollment's device keys, or a group's
// master keys from which device keys are derived.
struct SymmetricKeyAttestation {
  std::string primary_key;
  std::string secondary_key;
};

// X509Attestation names the certificates an enrollment trusts (PEM), or verified CAs by name.
struct X509Attestation {
  std::string client_primary_pem;
  std::string client_secondary_pem;
  std::string signing_primary_pem;
  std::string signing_secondary_pem;
  std::string ca_reference_primary;
  std::string ca_reference_secondary;
};

// TpmAttestation holds base64 TPM2B_PUBLIC areas and, for individual enrollments, the devid
// extensions: whether the device must present an EK certificate, and a measured-boot PCR policy
// in tpm::FormatPcrPolicy's text form ("" = none).
struct TpmAttestation {
  std::string endorsement_key;
  std::string storage_root_key;
  bool require_ek_certificate = false;
  std::string pcr_policy;
};

// AttestationMechanism is one enrollment's attestation; only the member for `type` is meaningful.
struct AttestationMechanism {
  AttestationType type = AttestationType::kNone;
  SymmetricKeyAttestation symmetric_key;
  X509Attestation x509;
  TpmAttestation tpm;
};

}  // namespace devid::registry
