#pragma once

#include "api/device_api.h"
#include "api/http.h"
#include "api/service_api.h"
#include "base/random.h"

namespace devid::api {

// Router is the server's one Handler: it gives each request a tracking ID, parses the target and
// sends it to the device API ({idScope}/registrations/…), the service API (enrollments,
// enrollmentGroups, registrations) or the health check (GET /healthz).
class Router final : public Handler {
 public:
  // Router keeps references to the APIs; they must outlive it.
  Router(DeviceApi& device, ServiceApi& service, Random& random)
      : device_(device), service_(service), random_(random) {}

  Response Handle(const Request& request) override;

 private:
  DeviceApi& device_;
  ServiceApi& service_;
  Random& random_;
};

}  // namespace devid::api
