#pragma once

#include <string>
#include <vector>

#include "api/http.h"
#include "api/target.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "registry/registry.h"

namespace devid::api {

// DeviceApiOptions configures the device (DPS-compatible) API.
struct DeviceApiOptions {
  std::string id_scope;
  std::vector<std::string> hubs;  // the service's IoT hubs, when an enrollment names none
  int retry_after_seconds = 1;    // the polling hint sent with `assigning`
};

// DeviceApi serves the DPS device routes (protocol notes §1):
//   PUT  /{idScope}/registrations/{registrationId}/register
//   GET  /{idScope}/registrations/{registrationId}/operations/{operationId}
//   POST /{idScope}/registrations/{registrationId}
// Registration is done when the PUT returns (attested, allocated and durably stored); the PUT
// answers 202 `assigning` and the operation poll answers `assigned`, as DPS does. A rejected
// request changes nothing in the store.
class DeviceApi {
 public:
  // DeviceApi keeps references to everything it is given; they must outlive it.
  DeviceApi(DeviceApiOptions options, registry::Registry& registry,
            attestation::SymmetricKeyVerifier& verifier, const Clock& clock, Random& random)
      : options_(std::move(options)),
        registry_(registry),
        verifier_(verifier),
        clock_(clock),
        random_(random) {}

  // Handle serves a request whose target's second segment is "registrations".
  Response Handle(const Request& request, const Target& target, const std::string& tracking_id);

 private:
  Response Register(const Request& request, const Target& target, const std::string& reg_id,
                    const std::string& tracking_id);
  Response OperationStatus(const Request& request, const std::string& reg_id,
                           const std::string& operation_id, const std::string& tracking_id);
  Response RegistrationStatus(const Request& request, const std::string& reg_id,
                              const std::string& tracking_id);
  Result<attestation::VerifiedDevice> Authenticate(const Request& request,
                                                   const std::string& reg_id);
  Response Reject(const Error& error, const std::string& reg_id, const std::string& tracking_id);

  DeviceApiOptions options_;
  registry::Registry& registry_;
  attestation::SymmetricKeyVerifier& verifier_;
  const Clock& clock_;
  Random& random_;
};

}  // namespace devid::api
