#pragma once

#include <string>

#include "api/http.h"

namespace devid::api {

// TextResponse is a plain-text answer (`text/plain; charset=utf-8`, the message and a newline),
// for the routes whose clients are not DPS SDKs: EST (RFC 7030 §4.2.3 leaves error bodies to the
// server) and CRL, CA certificate and OCSP lookups.
Response TextResponse(int status, std::string message);

}  // namespace devid::api
