#pragma once

#include <string>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/target.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "ca/authority.h"

namespace devid::api {

// EstApi serves Enrollment over Secure Transport (RFC 7030) under /.well-known/est/:
//   GET  cacerts        the CA certificates (issuing CAs, then roots) as certs-only PKCS #7
//   GET  csrattrs       204: no attributes asked for (the profile decides the extensions)
//   POST simpleenroll   a device-client certificate for a PKCS #10 request
// Enrollment is authorized by the device's DPS SAS token in `Authorization` (RFC 7030 §3.2.3
// allows HTTP-based client authentication): the token must verify for the registration ID that
// is the request's subject CN, so a device can only obtain a certificate naming itself. Errors are
// text/plain with a message a person can act on (RFC 7030 §4.2.3).
class EstApi final : public Route {
 public:
  // EstApi keeps references to authority and verifier; both must outlive it.
  EstApi(const ca::Authority& authority, attestation::SymmetricKeyVerifier& verifier,
         std::string id_scope)
      : authority_(authority), verifier_(verifier), id_scope_(std::move(id_scope)) {}

  // Matches tells whether target is under /.well-known/est/.
  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  Response CaCerts(std::string_view tracking_id);
  Response SimpleEnroll(const Request& request, std::string_view tracking_id);

  const ca::Authority& authority_;
  attestation::SymmetricKeyVerifier& verifier_;
  std::string id_scope_;
};

}  // namespace devid::api
