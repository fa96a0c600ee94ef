#pragma once

#include <optional>
#include <string_view>

#include "api/http.h"
#include "api/target.h"

namespace devid::api {

// Route is one API the Router can send requests to beside the device and service APIs (EST,
// CRL and OCSP, the certificate inventory, ...): it claims the targets it serves and answers them.
// Implementations are called from many threads at once.
class Route {
 public:
  virtual ~Route() = default;
  // Matches tells whether target belongs to this API (a path prefix test; no I/O).
  virtual bool Matches(const Target& target) const = 0;
  // Handle answers one request; tracking_id goes into error messages and the log.
  virtual Response Handle(const Request& request, const Target& target,
                          std::string_view tracking_id) = 0;
  // TryHandleNow answers a request this API matches without blocking, or returns nullopt for
  // Handle to answer it (Handler::TryHandleNow). The default answers nothing.
  virtual std::optional<Response> TryHandleNow(const Request& request, const Target& target) {
    (void)request;
    (void)target;
    return std::nullopt;
  }
};

}  // namespace devid::api
