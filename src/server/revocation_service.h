#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api/revocation_api.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/authority.h"
#include "ca/crl_publisher.h"
#include "ca/ocsp_responder.h"
#include "keys/key_store.h"
#include "registry/registry.h"
#include "server/ca_store.h"

namespace devid::server {

// LoadOrIssueOcspSigners returns a delegated OCSP signer (profile ocsp-signer) for every issuing
// CA of authority that has not expired. Each signer's key is an encrypted ECDSA P-256 file key
// <ca_directory>/ocsp/<issuer key ID>.key (passphrase in <ca_directory>/ocsp/passphrase, both
// 0600), made on first use and kept; its certificate <issuer key ID>.pem is issued by that CA
// when missing, not matching the key or the CA, or when less than a third of its lifetime remains,
// and every certificate issued is recorded in the registry's inventory. Fails as the key store,
// the authority and Registry::RecordCertificate.
Result<std::vector<ca::OcspSigner>> LoadOrIssueOcspSigners(const std::string& ca_directory,
                                                           const ca::Authority& authority,
                                                           const keys::KeyStores& key_stores,
                                                           registry::Registry& registry,
                                                           const Clock& clock, Random& random);

// kRootCrlValidity is how long a root CA's CRL is valid: roots sign rarely and may be offline.
inline constexpr std::chrono::seconds kRootCrlValidity{std::chrono::hours(24 * 365)};

// RevocationService is what `devid serve` runs for revocation: the CRL publisher, the OCSP
// responder and the route serving both, in the order they must be destroyed (last first).
struct RevocationService {
  std::unique_ptr<ca::CrlPublisher> crls;
  std::unique_ptr<ca::OcspResponder> ocsp;
  std::unique_ptr<api::RevocationApi> api;
};

// StartRevocationService prepares the OCSP signers of ca (LoadOrIssueOcspSigners under
// ca_directory, the CaStore's directory) and builds the service. ca, registry and clock must
// outlive the result.
Result<std::unique_ptr<RevocationService>> StartRevocationService(const std::string& ca_directory,
                                                                  ServerAuthority& ca,
                                                                  registry::Registry& registry,
                                                                  const Clock& clock,
                                                                  Random& random);

}  // namespace devid::server
