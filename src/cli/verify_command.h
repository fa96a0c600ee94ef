#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddVerifyCommand registers `devid device verify-command FILE` on device: it checks a
// server-signed command envelope with the SDK's CommandVerifier and prints the command's JSON
// only when it is accepted; otherwise it prints the reason to stderr and sets exit_code to 1.
void AddVerifyCommand(CLI::App& device, int& exit_code);

}  // namespace devid::cli
