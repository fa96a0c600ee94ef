#pragma once

// Header-only so that the unit tests, which do not link the CLI's sources, can test it.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::cli {

// ParseDuration reads a duration flag: "30d", "12h", "90m", "45s" or a plain number of seconds.
// Signs, spaces, fractions, upper-case units and values above 2^40 are refused with
// kInvalidArgument, so a typo never becomes a negative or overflowing bound.
inline Result<int64_t> ParseDuration(std::string_view text) {
  int64_t unit = 1;
  std::string_view digits = text;
  if (!text.empty() && std::string_view("dhms").find(text.back()) != std::string_view::npos) {
    unit = text.back() == 'd' ? 86400 : text.back() == 'h' ? 3600 : text.back() == 'm' ? 60 : 1;
    digits.remove_suffix(1);
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < 0 ||
      value > (int64_t{1} << 40)) {
    return std::unexpected(
        InvalidArgument("\"" + std::string(text) + "\" is not a duration (30d, 12h, 90m, 45s)"));
  }
  return value * unit;
}

}  // namespace devid::cli
