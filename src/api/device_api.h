#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/http.h"
#include "api/target.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "attestation/tpm/tpm_verifier.h"
#include "attestation/x509/x509_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/shared_value.h"
#include "ca/authority.h"
#include "registry/registry.h"

namespace devid::api {

// DeviceApiOptions configures the device (DPS-compatible) API.
struct DeviceApiOptions {
  std::string id_scope;
  std::vector<std::string> hubs;  // the service's IoT hubs, when an enrollment names none
  int retry_after_seconds = 1;    // the polling hint sent with `assigning`
  // tpm_challenge_ttl is how long a TPM challenge's key stays usable (protocol notes §4.2).
  std::chrono::seconds tpm_challenge_ttl = attestation::TpmVerifier::kDefaultChallengeTtl;
  // tpm_ek_certificates is the fleet's EK certificate policy and TPM manufacturer roots.
  attestation::EkCertificatePolicy tpm_ek_certificates;
  // authority, when set, issues an operational certificate to a device whose register request
  // carries a `csr` (the 2025-07-01-preview shape); null refuses such requests. Not owned.
  const ca::Authority* authority = nullptr;
  // crl_cache, when set, checks X.509 devices' third-party CAs' CRLs. Not owned.
  attestation::CrlCache* crl_cache = nullptr;
};

// DeviceApi serves the DPS device routes (protocol notes §1):
//   PUT  /{idScope}/registrations/{registrationId}/register
//   GET  /{idScope}/registrations/{registrationId}/operations/{operationId}
//   POST /{idScope}/registrations/{registrationId}
// Registration is done when the PUT returns (attested, allocated and durably stored); the PUT
// answers 202 `assigning` and the operation poll answers `assigned`, as DPS does. A rejected
// request changes nothing in the store.
//
// A register body with `csr` (base64 DER PKCS #10, CN = registration ID) gets a device-client
// certificate from devid's CA, recorded in the inventory; the PUT then answers 200 `assigned` at
// once with `registrationState.issuedCertificateChain` (leaf, issuing CA; base64 DER), since the
// chain is handed out once and not stored with the registration.
//
// X.509 devices send no Authorization: their TLS client certificate chain authenticates them
// (protocol notes §3, X509Verifier), and the answer carries `registrationState.x509`.
//
// TPM devices (a `tpm` object in the register body) first register without Authorization and
// get 401 with the activation blob (`authenticationKey`, `keyName`); that stores a pending
// challenge, the one write an unauthenticated request makes. Their second PUT is verified with
// the challenge's key only; later polls with the key stored with the registration, and the
// final answer carries `registrationState.tpm.authenticationKey` (protocol notes §4.2). The
// devid extensions (an EK certificate; a measured-boot quote, whose challenge the 401 answer adds
// as `attestationChallenge`) are in docs/device-provisioning.md.
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
        tpm_verifier_(registry, clock, random, options_.tpm_challenge_ttl,
                      options_.tpm_ek_certificates),
        x509_verifier_(registry, clock, options_.crl_cache) {}

  // Handle serves a request whose target's second segment is "registrations".
  Response Handle(const Request& request, const Target& target, const std::string& tracking_id);

  // SetIdScope replaces the ID scope requests must name (a node re-reading its store's
  // settings); requests in flight finish with the scope they started with.
  void SetIdScope(std::string id_scope) { id_scope_.Set(std::move(id_scope)); }

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
  // IssueForCsr checks the body's `csr` against devid's device request policy, with CN =
  // reg_id, and issues and records a certificate for it.
  Result<pki::Certificate> IssueForCsr(const nlohmann::json& csr, const std::string& reg_id);
  Response Reject(const Error& error, const std::string& reg_id, const std::string& tracking_id);

  DeviceApiOptions options_;
  registry::Registry& registry_;
  attestation::SymmetricKeyVerifier& verifier_;
  const Clock& clock_;
  Random& random_;
  attestation::TpmVerifier tpm_verifier_;
  attestation::X509Verifier x509_verifier_;
  SharedValue<std::string> id_scope_{options_.id_scope};
};

}  // namespace devid::api
