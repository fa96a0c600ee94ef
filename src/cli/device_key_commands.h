#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddDeviceKeyCommands registers `devid device key create` and `devid device csr` under device:
// a technician makes the device's signing key in a file or a PKCS #11 token and gets a request
// for it that `devid ca issue` certifies. The `key` subcommand is shared with the other device
// key commands and created here only when absent. A command that fails prints the error to
// stderr and sets exit_code to 1.
void AddDeviceKeyCommands(CLI::App& device, int& exit_code);

}  // namespace devid::cli
