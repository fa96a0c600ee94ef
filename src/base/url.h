#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace devid {

// PercentDecode decodes %XX escapes (and, when plus_is_space, '+' as a space). It fails on a
// truncated or non-hex escape.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space = false);

// PercentEncodeComponent encodes like JavaScript's encodeURIComponent (unreserved: A-Z a-z 0-9
// - _ . ! ~ * ' ( )), with uppercase hex; strict also encodes ! ' ( ) * as the Azure SDKs'
// encodeUriComponentStrict does.
std::string PercentEncodeComponent(std::string_view in, bool strict = false,
                                   bool lowercase_hex = false);

}  // namespace devid
