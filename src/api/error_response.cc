#include "api/error_response.h"

#include <nlohmann/json.hpp>

#include "api/error_codes.h"
#include "base/clock.h"

namespace devid::api {
namespace {

int CodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return error_code::kInvalidField;
    case ErrorCode::kUnauthenticated: return error_code::kUnauthorized;
    // DPS clients surface only 401 as an authorization failure, so a refusal after
    // authentication (disabled enrollment, missing rights) is a 401 with its own code.
    case ErrorCode::kPermissionDenied: return error_code::kInsufficientRights;
    case ErrorCode::kNotFound: return error_code::kNotFound;
    case ErrorCode::kAlreadyExists: return error_code::kAlreadyExists;
    case ErrorCode::kFailedPrecondition: return error_code::kEtagMismatch;
    case ErrorCode::kAborted: return error_code::kEtagMismatch;
    case ErrorCode::kResourceExhausted: return error_code::kThrottled;
    case ErrorCode::kUnavailable: return error_code::kUnavailable;
    case ErrorCode::kOk:
    case ErrorCode::kInternal: break;
  }
  return error_code::kInternal;
}

}  // namespace

int DpsErrorCode(const Error& error) { return CodeFor(error.code()); }

Response ErrorResponse(int error_code, std::string_view message, std::string_view tracking_id) {
  Response response;
  response.status = error_code / 1000;
  nlohmann::json body = {
      {"errorCode", error_code},
      {"trackingId", tracking_id},
      {"message", message},
      {"timestampUtc", FormatUtc(std::chrono::system_clock::now())},
  };
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  response.SetHeader("Content-Type", "application/json; charset=utf-8");
  response.SetHeader("x-ms-error-code", std::to_string(error_code));
  return response;
}

Response ErrorResponseFor(const Error& error, std::string_view tracking_id) {
  int code = DpsErrorCode(error);
  if (code / 1000 >= 500) {
    return ErrorResponse(code, "internal error; quote trackingId " + std::string(tracking_id),
                         tracking_id);
  }
  return ErrorResponse(code, error.message(), tracking_id);
}

}  // namespace devid::api
