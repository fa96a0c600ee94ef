#include "attestation/x509/ca_reference.h"

#include <string>

namespace devid::attestation {

Result<pki::Certificate> VerifiedCaCertificate(registry::Registry& registry,
                                               std::string_view name) {
  auto stored = registry.GetCaCertificate(name);
  if (!stored) {
    if (stored.error().code() != ErrorCode::kNotFound) return std::unexpected(stored.error());
    return std::unexpected(
        NotFound("CA certificate \"" + std::string(name) + "\" is not uploaded (caReferences)"));
  }
  if (!stored->verified) {
    return std::unexpected(FailedPrecondition(
        "CA certificate \"" + std::string(name) +
        "\" is not verified: prove possession of its key first (verificationCode, verify)"));
  }
  auto certificate = pki::Certificate::FromDer(stored->der);
  if (!certificate) {
    return std::unexpected(Internal("stored CA certificate \"" + std::string(name) +
                                    "\" does not parse: " + certificate.error().message()));
  }
  return certificate;
}

Status CheckCaReferences(registry::Registry& registry,
                         const registry::AttestationMechanism& attestation) {
  if (attestation.type != registry::AttestationType::kX509) return Ok();
  for (const std::string* name :
       {&attestation.x509.ca_reference_primary, &attestation.x509.ca_reference_secondary}) {
    if (name->empty()) continue;
    DEVID_TRY(VerifiedCaCertificate(registry, *name));
  }
  return Ok();
}

}  // namespace devid::attestation
