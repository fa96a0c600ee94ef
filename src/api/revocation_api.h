#pragma once

#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/target.h"
#include "base/clock.h"
#include "ca/authority.h"
#include "ca/crl_publisher.h"
#include "ca/ocsp_responder.h"

namespace devid::api {

// RevocationApi serves the URLs devid writes into the certificates it issues (RFC 5280 §4.2.1.13,
// §4.2.2.1), without authentication:
//   GET  /crl/<key id>.crl   the issuing CA's current CRL, DER (application/pkix-crl, RFC 5280 §5)
//   GET  /ca/<key id>.cer    the CA certificate with that subjectKeyIdentifier, DER
//                            (application/pkix-cert, RFC 2585 §4.2)
//   POST /ocsp               an OCSP request (application/ocsp-request → application/ocsp-response)
//   GET  /ocsp/<request>     the same, the request URL-encoded base64 (RFC 6960 Appendix A.1)
// An unknown key ID is a plain-text 404. OCSP errors are OCSP response statuses in a 200.
// Responses carry Cache-Control, Expires, Last-Modified and an ETag; a CRL is answered 304 to a
// matching If-None-Match.
class RevocationApi final : public Route {
 public:
  // RevocationApi keeps references to its collaborators; they must outlive it.
  RevocationApi(const ca::Authority& authority, ca::CrlPublisher& crls, ca::OcspResponder& ocsp,
                const Clock& clock)
      : authority_(authority), crls_(crls), ocsp_(ocsp), clock_(clock) {}

  // Matches tells whether target is under /crl/, /ca/ or /ocsp.
  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;
  // TryHandleNow answers an OCSP request whose response is cached and current
  // (OcspResponder::RespondCached), exactly as Handle would; anything else is left to Handle.
  std::optional<Response> TryHandleNow(const Request& request, const Target& target) override;

 private:
  Response Crl(const Request& request, const std::string& name, std::string_view tracking_id);
  Response CaCertificate(const std::string& name);
  Response Ocsp(std::string_view request_der, std::string_view tracking_id);
  Response OcspResponse(ca::OcspAnswer answer, std::string_view tracking_id);

  const ca::Authority& authority_;
  ca::CrlPublisher& crls_;
  ca::OcspResponder& ocsp_;
  const Clock& clock_;
};

}  // namespace devid::api
