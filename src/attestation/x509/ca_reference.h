#pragma once

#include <string_view>

#include "base/result.h"
#include "pki/certificate.h"
#include "registry/attestation_mechanism.h"
#include "registry/registry.h"

namespace devid::attestation {

// VerifiedCaCertificate returns the CA certificate an enrollment group's caReferences names, only
// when it has been verified by proof of possession: only verified CAs back groups. Fails with
// kNotFound when no CA certificate has that name, kFailedPrecondition when it is not verified (both
// messages name it), kInternal when the stored certificate does not parse, or a store error.
Result<pki::Certificate> VerifiedCaCertificate(registry::Registry& registry, std::string_view name);

// CheckCaReferences fails as VerifiedCaCertificate for the first caReferences entry of an X.509
// attestation that does not name a verified CA certificate; other attestations pass.
Status CheckCaReferences(registry::Registry& registry,
                         const registry::AttestationMechanism& attestation);

}  // namespace devid::attestation
