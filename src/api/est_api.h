#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/target.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "base/clock.h"
#include "base/shared_value.h"
#include "ca/authority.h"
#include "ca/client_certificate_verifier.h"
#include "pki/certificate.h"
#include "pki/csr.h"
#include "registry/registry.h"

namespace devid::api {

// EstApi serves Enrollment over Secure Transport (RFC 7030) under /.well-known/est/:
//   GET  cacerts         the CA certificates (issuing CAs, then roots) as certs-only PKCS #7
//   GET  csrattrs        what requests should look like: an ECDSA P-256 key signed with SHA-256
//   POST simpleenroll    a device-client certificate for a PKCS #10 request
//   POST simplereenroll  a renewed certificate (same subject, usually a new key) for a device
//                        that authenticates with its current certificate
//   POST serverkeygen    a new ECDSA P-256 key and its certificate (multipart/mixed, RFC 7030
//                        §4.4.2)
// simpleenroll and serverkeygen accept either of two credentials: the device's DPS SAS token in
// `Authorization` (RFC 7030 §3.2.3 allows HTTP-based client authentication), or a TLS client
// certificate devid issued to the device (§3.3.2), current and not revoked. simplereenroll
// accepts only the certificate (§4.2.2). Either way the request's subject CN must be the
// authenticated registration ID, so a device can only obtain a certificate naming itself; every
// request passes ca::CheckDeviceCsr. Every issued certificate is recorded in the registry's
// inventory before it is returned: when recording fails, the request fails. Every TLS client
// certificate presented is observed in the inventory. Errors are text/plain with a message a
// person can act on (RFC 7030 §4.2.3).
class EstApi final : public Route {
 public:
  // EstApi keeps references to authority, verifier, registry and clock; all must outlive it.
  EstApi(const ca::Authority& authority, attestation::SymmetricKeyVerifier& verifier,
         registry::Registry& registry, const Clock& clock, std::string id_scope)
      : authority_(authority),
        verifier_(verifier),
        registry_(registry),
        certificates_(authority, registry, clock),
        id_scope_(std::move(id_scope)) {}

  // SetIdScope replaces the ID scope SAS tokens must name (a node re-reading its store's
  // settings); requests in flight finish with the scope they started with.
  void SetIdScope(std::string id_scope) { id_scope_.Set(std::move(id_scope)); }

  // Matches tells whether target is under /.well-known/est/.
  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  enum class Operation { kEnroll, kReenroll, kServerKeyGen };

  Response CaCerts(std::string_view tracking_id);
  Response Enroll(Operation operation, const Request& request,
                  std::optional<pki::Certificate> client_certificate, std::string_view tracking_id);
  // Authorize checks that the requester may obtain a certificate for registration_id: by the SAS
  // token or the client certificate (simple enrollment and server key generation), by the client
  // certificate only (re-enrollment, whose subject must then equal the certificate's).
  Status Authorize(Operation operation, const Request& request, const pki::Csr& csr,
                   const std::string& registration_id,
                   std::optional<pki::Certificate> client_certificate);
  // CheckEnrollmentEnabled refuses (kPermissionDenied) a device whose individual enrollment, or
  // else the group it registered through, is disabled.
  Status CheckEnrollmentEnabled(const std::string& registration_id);

  const ca::Authority& authority_;
  attestation::SymmetricKeyVerifier& verifier_;
  registry::Registry& registry_;
  ca::ClientCertificateVerifier certificates_;
  SharedValue<std::string> id_scope_;
};

}  // namespace devid::api
