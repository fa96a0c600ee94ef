#include "sdk/status_error.h"

#include <utility>

namespace devid::sdk {

Error StatusError(int status, std::string message) {
  switch (status) {
    case 400:
      return InvalidArgument(std::move(message));
    case 401:
      return Unauthenticated(std::move(message));
    case 403:
      return PermissionDenied(std::move(message));
    case 404:
      return NotFound(std::move(message));
    default:
      return status >= 500 ? Unavailable(std::move(message))
                           : FailedPrecondition(std::move(message));
  }
}

}  // namespace devid::sdk
