#include "base/error.h"

namespace devid {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "Ok";
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kUnauthenticated: return "Unauthenticated";
    case ErrorCode::kPermissionDenied: return "PermissionDenied";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kAlreadyExists: return "AlreadyExists";
    case ErrorCode::kFailedPrecondition: return "FailedPrecondition";
    case ErrorCode::kAborted: return "Aborted";
    case ErrorCode::kResourceExhausted: return "ResourceExhausted";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Unknown";
}

Error Error::WithContext(std::string_view context) const {
  std::string message(context);
  message += ": ";
  message += message_;
  return Error(code_, std::move(message));
}

Error InvalidArgument(std::string m) { return Error(ErrorCode::kInvalidArgument, std::move(m)); }
Error Unauthenticated(std::string m) { return Error(ErrorCode::kUnauthenticated, std::move(m)); }
Error PermissionDenied(std::string m) { return Error(ErrorCode::kPermissionDenied, std::move(m)); }
Error NotFound(std::string m) { return Error(ErrorCode::kNotFound, std::move(m)); }
Error AlreadyExists(std::string m) { return Error(ErrorCode::kAlreadyExists, std::move(m)); }
Error FailedPrecondition(std::string m) {
  return Error(ErrorCode::kFailedPrecondition, std::move(m));
}
Error Aborted(std::string m) { return Error(ErrorCode::kAborted, std::move(m)); }
Error ResourceExhausted(std::string m) {
  return Error(ErrorCode::kResourceExhausted, std::move(m));
}
Error Unavailable(std::string m) { return Error(ErrorCode::kUnavailable, std::move(m)); }
Error Internal(std::string m) { return Error(ErrorCode::kInternal, std::move(m)); }

}  // namespace devid
