#pragma once

#include <string>
#include <string_view>

namespace devid {

// ErrorCode is the canonical failure category (the Abseil set). Codes are API: api/ maps each to an
// HTTP status and a DPS error code, so never renumber or reuse one.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,
  kUnauthenticated,
  kPermissionDenied,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kAborted,
  kResourceExhausted,
  kUnavailable,
  kInternal,
};

// ErrorCodeName returns the code's stable name ("kNotFound" → "NotFound").
std::string_view ErrorCodeName(ErrorCode code);

// Error is a failure that reached a boundary: a code and a message a person can act on. The
// message names the action, the object and the cause, and never holds a key, PIN or token.
class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // WithContext returns a copy whose message is "context: message".
  Error WithContext(std::string_view context) const;

 private:
  ErrorCode code_;
  std::string message_;
};

Error InvalidArgument(std::string message);
Error Unauthenticated(std::string message);
Error PermissionDenied(std::string message);
Error NotFound(std::string message);
Error AlreadyExists(std::string message);
Error FailedPrecondition(std::string message);
Error Aborted(std::string message);
Error ResourceExhausted(std::string message);
Error Unavailable(std::string message);
Error Internal(std::string message);

}  // namespace devid
