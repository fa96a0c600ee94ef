#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "base/result.h"
#include "devid/credential.h"

namespace devid::cli {

// AddDevicePkcs11Commands registers `devid device key import-symmetric` under device, which
// stores a device's SAS key in a PKCS #11 token. The `key` subcommand is shared with the other
// device key commands and created here only when absent. A command that fails prints the error
// to stderr and sets exit_code to 1.
void AddDevicePkcs11Commands(CLI::App& device, int& exit_code);

// OpenPkcs11SasKey opens the SAS key that import-symmetric stored at uri, with module serving a
// URI without module-path, for `devid device register --pkcs11`. Its errors say what to check
// (the PIN, the token label, the key label) beside the token's own answer.
Result<std::unique_ptr<sdk::SasCredential>> OpenPkcs11SasKey(const std::string& uri,
                                                             const std::string& module);

}  // namespace devid::cli
