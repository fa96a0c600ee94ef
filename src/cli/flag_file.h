#pragma once

// Header-only, as duration.h, so that unit tests can use it without the CLI's sources.

#include <string>
#include <string_view>

#include "base/file.h"
#include "base/result.h"

namespace devid::cli {

// ReadFlagFile reads the file a flag names. A failure names the flag ("--trust-bundle: ...
// No such file or directory"), so that of several files given the user knows which is wrong.
inline Result<std::string> ReadFlagFile(const std::string& path, std::string_view flag) {
  auto text = ReadFile(path);
  if (!text) return std::unexpected(text.error().WithContext(flag));
  return text;
}

}  // namespace devid::cli
