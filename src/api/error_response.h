#pragma once

#include <string_view>

#include "api/http.h"
#include "base/error.h"

namespace devid::api {

// ErrorResponse builds a DPS `ProvisioningServiceErrorDetails` response: a JSON body with
// errorCode, trackingId, message and timestampUtc, the same code in `x-ms-error-code`, and
// `Content-Type: application/json`. error_code is the six-digit DPS-style code (docs/errors.md);
// its first three digits are the HTTP status.
Response ErrorResponse(int error_code, std::string_view message, std::string_view tracking_id);

// DpsErrorCode returns the six-digit DPS-style code for a devid Error.
int DpsErrorCode(const Error& error);

// ErrorResponseFor maps a devid Error to its HTTP status and DPS-style code. 5xx responses carry a
// generic message and the tracking ID; the cause goes to the log, not the client.
Response ErrorResponseFor(const Error& error, std::string_view tracking_id);

}  // namespace devid::api
