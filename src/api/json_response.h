#pragma once

#include <nlohmann/json.hpp>

#include "api/http.h"
#include "base/result.h"

namespace devid::api {

// JsonResponse renders body with `Content-Type: application/json; charset=utf-8` (the DPS SDKs
// parse only bodies of that type).
Response JsonResponse(int status, const nlohmann::json& body);

// ParseJsonBody parses a request body as JSON; an empty body is {} when empty_is_object. Fails
// with kInvalidArgument ("the body is not valid JSON").
Result<nlohmann::json> ParseJsonBody(std::string_view body, bool empty_is_object = true);

// IsValidApiVersion tells whether an api-version looks like YYYY-MM-DD, optionally followed by
// -preview. Any such version is accepted; other formats are refused.
bool IsValidApiVersion(std::string_view version);

}  // namespace devid::api
