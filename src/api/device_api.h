#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http.h"
#include "api/target.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "attestation/tpm/tpm_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "registry/registry.h"

namespace devid::api {

// DeviceApiOptions configures the device (DPS-compatible) API.
struct DeviceApiOptions {
  std::string id_scope;
  std::vector<std::string> hubs;  // the service's IoT hubs, when an enrollment names none
  int retry_after_seconds = 1;    // the polling hint sent with `assigning`
  // tpm_challenge_ttl is how long a TPM challenge's key stays usable (protocol notes §4.2).
  std::chrono::seconds tpm_challenge_ttl = attestation::TpmVerifier::kDefaultChallengeTtl;
};

// DeviceApi serves the DPS device routes (protocol notes §1):
//   PUT  /{idScope}/registrations/{registrationId}/register
//   GET  /{idScope}/registrations/{registrationId}/operations/{operationId}
//   POST /{idScope}/registrations/{registrationId}
// Registration is done when the PUT returns (attested, allocated and durably stored); the PUT
// answers 202 `assigning` and the operation poll answers `assigned`, as DPS does. A rejected
// request changes nothing in the store.
//
// TPM devices (a `tpm` object in the register body) first register without Authorization and
// get 401 with the activation blob (`authenticationKey`, `keyName`); that stores a pending
// challenge, the one write an unauthenticated request makes. Their second PUT is verified with
// the challenge's key only; later polls with the key stored with the registration, and the
// final answer carries `registrationState.tpm.authenticationKey` (protocol notes §4.2).
class DeviceApi {
 public:
  // DeviceApi keeps references to everything it is given; they must outlive it.
  DeviceApi(DeviceApiOptions options, registry::Registry& registry,
            attestation::SymmetricKeyVerifier& verifier, const Clock& clock, Random& random)
      : options_(std::move(options)),
        registry_(registry),
        verifier_(verifier),
        clock_(clock),
        random_(random),
        tpm_verifier_(registry, clock, random, options_.tpm_challenge_ttl) {}

  // Handle serves a request whose target's second segment is "registrations".
  Response Handle(const Request& request, const Target& target, const std::string& tracking_id);

 private:
  Response Register(const Request& request, const Target& target, const std::string& reg_id,
                    const std::string& tracking_id);
  Response OperationStatus(const Request& request, const std::string& reg_id,
                           const std::string& operation_id, const std::string& tracking_id);
  Response RegistrationStatus(const Request& request, const std::string& reg_id,
                              const std::string& tracking_id);
  Response TpmChallenge(const attestation::TpmKeys& keys, const std::string& reg_id,
                        const std::string& tracking_id);
  // Authenticate verifies a device request; registration is the stored one (nullptr if none),
  // whose attestation picks the verifier.
  Result<attestation::VerifiedDevice> Authenticate(const Request& request,
                                                   const std::string& reg_id,
                                                   const registry::Registration* registration);
  // Answer renders a registration for the device: the operation (done = assigned) or, with
  // bare_state, the DeviceRegistrationState alone; TPM registrations get a fresh
  // tpm.authenticationKey.
  Result<nlohmann::json> Answer(const registry::Registration& registration,
                                const attestation::VerifiedDevice& device, bool bare_state);
  Response Reject(const Error& error, const std::string& reg_id, const std::string& tracking_id);

  DeviceApiOptions options_;
  registry::Registry& registry_;
  attestation::SymmetricKeyVerifier& verifier_;
  const Clock& clock_;
  Random& random_;
  attestation::TpmVerifier tpm_verifier_;
};

}  // namespace devid::api
