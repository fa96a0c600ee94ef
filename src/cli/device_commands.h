#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddDeviceCommands registers `devid device` (register, show), the device side built on the SDK
// (include/devid/). A command that fails prints the error to stderr and sets exit_code to 1.
void AddDeviceCommands(CLI::App& app, int& exit_code);

}  // namespace devid::cli
