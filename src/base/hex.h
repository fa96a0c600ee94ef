#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace devid {

// HexEncode returns bytes as hex, two digits a byte, lowercase unless uppercase is set.
std::string HexEncode(std::span<const uint8_t> bytes, bool uppercase = false);
std::string HexEncode(std::string_view bytes, bool uppercase = false);

// HexDigitValue returns the value of one hex digit (either case), or -1 for any other char.
int HexDigitValue(char c);

}  // namespace devid
