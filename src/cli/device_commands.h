#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "devid/credential.h"

namespace devid::cli {

// AddDeviceCommands registers `devid device` (register, show), the device side built on the SDK
// (include/devid/). A command that fails prints the error to stderr and sets exit_code to 1.
void AddDeviceCommands(CLI::App& app, int& exit_code);

// SymmetricKey returns a software SAS credential for the base64 key given inline, or read from
// file when file is set (named by flag in errors; the read text is cleansed).
Result<std::unique_ptr<sdk::SasCredential>> SymmetricKey(const std::string& inline_key,
                                                         const std::string& file,
                                                         std::string_view flag);

}  // namespace devid::cli
