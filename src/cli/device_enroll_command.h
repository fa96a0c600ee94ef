#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddDeviceEnrollCommand registers `devid device enroll` under device: a device's first
// certificate, through EST simpleenroll authorized by its SAS token (signed with its symmetric key
// in a file or a PKCS #11 token), for a new key made in the key store named by --key. The
// certificate is kept only when it chains to the trust bundle; on any failure the new key is
// deleted again. A command that fails prints the error to stderr and sets exit_code to 1.
void AddDeviceEnrollCommand(CLI::App& device, int& exit_code);

}  // namespace devid::cli
