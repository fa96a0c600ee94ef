#pragma once

#include <string>

#include "base/error.h"

namespace devid::sdk {

// StatusError turns a refusing HTTP status into the Error code that says what a device can do
// about it (400 invalid, 401 unauthenticated, 403 denied, 404 not found, 5xx try later, other
// statuses a failed precondition), with message as its text. The DPS and EST clients share it.
Error StatusError(int status, std::string message);

}  // namespace devid::sdk
