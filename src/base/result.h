#pragma once

#include <expected>

#include "base/error.h"

namespace devid {

// Result is the return type of everything that can fail at run time.
template <typename T>
using Result = std::expected<T, Error>;

// Status is a Result without a value.
using Status = Result<void>;

// Ok returns a successful Status.
inline Status Ok() { return {}; }

}  // namespace devid

#define DEVID_CONCAT_INNER(a, b) a##b
#define DEVID_CONCAT(a, b) DEVID_CONCAT_INNER(a, b)

// DEVID_TRY(expr) returns expr's error from the enclosing function when expr failed.
#define DEVID_TRY(expr)                                                          \
  do {                                                                           \
    auto&& devid_try_result = (expr);                                            \
    if (!devid_try_result) return std::unexpected(devid_try_result.error());     \
  } while (false)

// DEVID_ASSIGN_OR_RETURN(lhs, expr) moves expr's value into lhs, or returns its error.
#define DEVID_ASSIGN_OR_RETURN(lhs, expr) \
  DEVID_ASSIGN_OR_RETURN_IMPL(DEVID_CONCAT(devid_result_, __LINE__), lhs, expr)
#define DEVID_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)        \
  auto tmp = (expr);                                       \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(tmp).value()
