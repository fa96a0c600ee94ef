#pragma once

#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/service_auth.h"
#include "base/clock.h"
#include "registry/registry.h"

namespace devid::api {

// CertificateApi is the service API over the certificate inventory (discovery and revocation),
// authorized like the rest of the service API (enrollment read / write rights):
//   POST /certificates/query      a JSON filter → the matching records, paged like DPS queries
//                                 {"deviceId", "serialNumber", "thumbprint", "source":
//                                  "issued"|"observed", "revoked": bool, "expiringWithinSeconds"}
//   GET  /certificates/{thumbprint}  one record (SHA-256 or SHA-1 thumbprint, hex) with its PEM
//   POST /certificates/revoke     {"serialNumber" | "thumbprint" | "deviceId", "reason"} → the
//                                 certificates revoked now (RFC 5280 reason names or codes)
// Revocation goes to the store at once, so every check devid makes sees it on the next request.
class CertificateApi final : public Route {
 public:
  // CertificateApi keeps references; they must outlive it.
  CertificateApi(registry::Registry& registry, const ServiceAuthenticator& auth, const Clock& clock)
      : registry_(registry), auth_(auth), clock_(clock) {}

  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  Response Query(const Request& request, std::string_view tracking_id);
  Response Show(std::string_view thumbprint, std::string_view tracking_id);
  Response Revoke(const Request& request, const std::string& actor, std::string_view tracking_id);

  registry::Registry& registry_;
  const ServiceAuthenticator& auth_;
  const Clock& clock_;
};

}  // namespace devid::api
