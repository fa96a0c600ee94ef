#pragma once

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "base/result.h"

namespace devid::cli {

// ReportStatus prints a failed command's error once, as "devid: <message>" on stderr, and sets
// exit_code to 1.
void ReportStatus(const Status& status, int& exit_code);

// RunDeviceCommand runs command and reports its failure. tpm2-tss's own stderr logging is off
// first, so that a tpm2: key's failure is reported once, in devid's words; TSS2_LOG set by the
// user (e.g. all+debug) still wins.
template <typename Options>
void RunDeviceCommand(Status (*command)(const Options&), const Options& options, int& exit_code) {
  ::setenv("TSS2_LOG", "all+none", /*overwrite=*/0);
  ReportStatus(command(options), exit_code);
}

// KeySubcommand returns `device key`, adding it on first use: several files register commands
// under it, in any order.
CLI::App* KeySubcommand(CLI::App& device);

}  // namespace devid::cli
