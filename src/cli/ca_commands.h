#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddCaCommands registers `devid ca` (init, import, rollover, list, issue): offline commands on
// the certificate authority in a data directory. A command that fails prints the error to stderr
// and sets exit_code to 1.
void AddCaCommands(CLI::App& app, int& exit_code);

}  // namespace devid::cli
