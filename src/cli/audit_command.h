#pragma once

#include <CLI/CLI.hpp>

#include "server/serve.h"

namespace devid::cli {

// AddAuditCommand registers `devid audit verify`: it walks the store's audit log and checks its
// hash chain (registry/audit_chain.h). It prints the number of records and the head (sequence and
// hash, for the operator to keep elsewhere) and exits 0 when the chain is intact; it prints the
// first broken record's sequence to stderr and sets exit_code to 1 when it is not, or when the
// store cannot be read. factories must outlive app's parsing.
void AddAuditCommand(CLI::App& app, int& exit_code, const server::RegistryFactories& factories);

}  // namespace devid::cli
