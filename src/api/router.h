#pragma once

#include "api/device_api.h"
#include "api/est_api.h"
#include "api/http.h"
#include "api/service_api.h"
#include "base/random.h"

namespace devid::api {

// Router is the server's one Handler: it gives each request a tracking ID, parses the target and
// sends it to the device API ({idScope}/registrations/…), the service API (enrollments,
// enrollmentGroups, registrations), EST (/.well-known/est/…) or the health check
// (GET /healthz).
class Router final : public Handler {
 public:
  // Router keeps references to the APIs; they must outlive it. est may be null (no CA: the EST
  // routes answer 404).
  Router(DeviceApi& device, ServiceApi& service, Random& random, EstApi* est = nullptr)
      : device_(device), service_(service), random_(random), est_(est) {}

  Response Handle(const Request& request) override;

 private:
  DeviceApi& device_;
  ServiceApi& service_;
  Random& random_;
  EstApi* est_;
};

}  // namespace devid::api
