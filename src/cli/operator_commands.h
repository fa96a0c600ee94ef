#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddOperatorCommands registers the operator subcommands (enrollment, group, registration, cert, keys)
// on app. A command that fails sets exit_code to non-zero after printing the error to stderr.
void AddOperatorCommands(CLI::App& app, int& exit_code);

}  // namespace devid::cli
