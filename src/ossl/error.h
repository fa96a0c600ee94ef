#pragma once

#include <string_view>

#include "base/error.h"

namespace devid::ossl {

// ErrorFromQueue drains OpenSSL's thread-local error queue into an Error "doing: reason", so the
// queue is empty on every path. code is the category to report (usually kInternal).
Error ErrorFromQueue(std::string_view doing, ErrorCode code = ErrorCode::kInternal);

}  // namespace devid::ossl
