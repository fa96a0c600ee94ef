#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::net {

// HttpGetOptions bounds one HttpGet.
struct HttpGetOptions {
  // timeout bounds the whole exchange: resolving, connecting, sending and reading the answer.
  std::chrono::milliseconds timeout{5000};
  // body_limit is the largest response body accepted.
  size_t body_limit = 16 * 1024 * 1024;
};

// HttpGet fetches url ("http://host[:port]/path") over plain HTTP/1.1 and returns the body of a
// 200 answer. It is for objects that carry their own signature, such as CRLs (RFC 5280 §4.2.1.13
// names http as their transport); it follows no redirects. Fails with kInvalidArgument for a URL
// that is not http://, kUnavailable when the server cannot be reached, times out, or answers
// other than 200 ("fetching http://...: CAUSE"), and kResourceExhausted above body_limit.
Result<std::string> HttpGet(std::string_view url, const HttpGetOptions& options = {});

}  // namespace devid::net
