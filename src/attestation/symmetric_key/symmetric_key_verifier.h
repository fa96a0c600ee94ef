#pragma once

#include <string_view>

#include "attestation/verified_device.h"
#include "base/clock.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::attestation {

// SymmetricKeyVerifier authenticates a device by a DPS SAS token (protocol notes §2.2): the token
// must name `{idScope}/registrations/{registrationId}` with skn=registration, be unexpired, and be
// signed with the individual enrollment's primary or secondary key, or with a key derived from an
// enrollment group's primary or secondary key (§2.3).
//
// Lookup order: the individual enrollment for the registration ID decides if it exists; else the
// group the device registered through before; else the registry's indexed group candidates. The
// first enrollment whose key verifies decides: a disabled one refuses.
class SymmetricKeyVerifier {
 public:
  // The verifier keeps references to registry and clock; both must outlive it.
  SymmetricKeyVerifier(registry::Registry& registry, const Clock& clock)
      : registry_(registry), clock_(clock) {}

  // Verify checks authorization (the SAS token) for registration_id in id_scope. Fails with
  // kUnauthenticated (malformed, expired, wrong resource or key name, no key verifies — the same
  // message whether or not the registration ID is enrolled), kPermissionDenied (the matching
  // enrollment or group is disabled) or a store error.
  Result<VerifiedDevice> Verify(std::string_view id_scope, std::string_view registration_id,
                                std::string_view authorization);
  // Verify, for a caller that has already read the device's registration (registration: the
  // stored one, or null when the device has none), so the registry is not asked twice.
  Result<VerifiedDevice> Verify(std::string_view id_scope, std::string_view registration_id,
                                std::string_view authorization,
                                const registry::Registration* registration);

 private:
  registry::Registry& registry_;
  const Clock& clock_;
};

}  // namespace devid::attestation
