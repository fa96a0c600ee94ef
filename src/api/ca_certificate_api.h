#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "api/http.h"
#include "api/route.h"
#include "api/service_auth.h"
#include "base/clock.h"
#include "base/random.h"
#include "registry/registry.h"

namespace devid::api {

// CaCertificateApi is the service API over CA certificates with proof of possession (DPS
// "verified CA certificates"), authorized like the rest of the service API (enrollment read /
// write rights). A certificate body field is PEM text or base64 (of DER or of PEM).
//   GET    /caCertificates                      every CA certificate, paged like DPS queries
//   GET    /caCertificates/{name}               one, with its PEM
//   PUT    /caCertificates/{name}               {"certificate"} upload or replace (If-Match); it
//                                               is stored unverified, whatever it was before
//   DELETE /caCertificates/{name}               refused while an enrollment group references it
//   POST   /caCertificates/{name}/verificationCode  a fresh one-time code (replaces any pending)
//   POST   /caCertificates/{name}/verify        {"certificate"}: a certificate whose subject CN is
//                                               the code, signed by the CA's key, valid now
// Only the code's SHA-256 is stored; verification consumes it atomically in the store.
class CaCertificateApi final : public Route {
 public:
  // kCodeLifetime is how long a verification code can be used.
  static constexpr std::chrono::minutes kCodeLifetime{60};

  // CaCertificateApi keeps references; they must outlive it.
  CaCertificateApi(registry::Registry& registry, const ServiceAuthenticator& auth,
                   const Clock& clock, Random& random)
      : registry_(registry), auth_(auth), clock_(clock), random_(random) {}

  bool Matches(const Target& target) const override;
  Response Handle(const Request& request, const Target& target,
                  std::string_view tracking_id) override;

 private:
  Response List(const Request& request, std::string_view tracking_id);
  Response Show(const std::string& name, std::string_view tracking_id);
  Response Upload(const Request& request, const std::string& name, const std::string& actor,
                  std::string_view tracking_id);
  Response Delete(const Request& request, const std::string& name, const std::string& actor,
                  std::string_view tracking_id);
  Response GenerateCode(const Request& request, const std::string& name, const std::string& actor,
                        std::string_view tracking_id);
  Response Verify(const Request& request, const std::string& name, const std::string& actor,
                  std::string_view tracking_id);

  registry::Registry& registry_;
  const ServiceAuthenticator& auth_;
  const Clock& clock_;
  Random& random_;
};

}  // namespace devid::api
