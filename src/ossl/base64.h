#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::ossl {

// Base64Encode returns the standard (RFC 4648 §4, padded) encoding of data.
std::string Base64Encode(std::span<const uint8_t> data);
std::string Base64Encode(std::string_view data);

// Base64Decode decodes standard padded base64. It fails with kInvalidArgument on characters outside
// the alphabet, bad padding or a length that is not a multiple of four.
Result<std::vector<uint8_t>> Base64Decode(std::string_view text);

// Base64UrlEncode returns the URL-safe encoding without padding (RFC 4648 §5, as JOSE uses it,
// RFC 7515 §2).
std::string Base64UrlEncode(std::span<const uint8_t> data);
std::string Base64UrlEncode(std::string_view data);

// Base64UrlDecode decodes unpadded URL-safe base64. It fails with kInvalidArgument on padding,
// characters outside the URL-safe alphabet or an impossible length.
Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text);

}  // namespace devid::ossl
