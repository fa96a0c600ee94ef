#pragma once

#include <CLI/CLI.hpp>

#include "server/serve.h"

namespace devid::cli {

// AddCaCommands registers `devid ca` (init, import, rollover, list, issue, root-crl): offline
// commands on the certificate authority in a data directory. A command that fails prints the error
// to stderr and sets exit_code to 1. `ca issue` records what it signs in the store factories open;
// they must outlive app's parsing.
void AddCaCommands(CLI::App& app, int& exit_code, const server::RegistryFactories& factories);

}  // namespace devid::cli
