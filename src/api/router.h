#pragma once

#include "api/device_api.h"
#include "api/http.h"
#include "api/route.h"
#include "api/service_api.h"
#include "base/random.h"

#include <vector>

namespace devid::api {

// Router is the server's Handler: it gives each request a tracking ID, parses the target and
// sends it to the health check (GET /healthz), the first of the extra routes that matches (EST,
// CRL and OCSP, ...), the service API (enrollments, enrollmentGroups, registrations) or the device
// API ({idScope}/registrations/…).
class Router final : public Handler {
 public:
  // Router keeps references to the APIs; they must outlive it. routes are tried in order.
  Router(DeviceApi& device, ServiceApi& service, Random& random, std::vector<Route*> routes = {})
      : device_(&device), service_(&service), random_(random), routes_(std::move(routes)) {}
  // A Router without the device and service APIs serves the health check and routes only (the
  // plain-HTTP listener for CRLs and OCSP).
  Router(Random& random, std::vector<Route*> routes)
      : random_(random), routes_(std::move(routes)) {}

  Response Handle(const Request& request) override;
  // TryHandleNow offers request to the route that matches it (Route::TryHandleNow). An answer
  // from memory carries no tracking ID: it cannot fail, and drawing one would cost about as much.
  std::optional<Response> TryHandleNow(const Request& request) override;

 private:
  DeviceApi* device_ = nullptr;
  ServiceApi* service_ = nullptr;
  Random& random_;
  std::vector<Route*> routes_;
};

}  // namespace devid::api
