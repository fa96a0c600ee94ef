#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "base/result.h"

namespace devid::cli {

// MigrateOptions are `devid migrate`'s flags.
struct MigrateOptions {
  std::string from;    // sqlite:///path/devid.db (an existing file)
  std::string to;      // postgresql://user@host:port/db
  bool force = false;  // replace what the target holds
  // live_progress rewrites the progress line in place as rows are copied (for a terminal);
  // otherwise a line is written when each table is done.
  bool live_progress = false;
};

// TableCount is one table's rows in the source and, after the copy, in the target.
struct TableCount {
  std::string table;
  int64_t source = 0;
  int64_t target = 0;
};

// MigrateStore copies a SQLite store to PostgreSQL: every table of the schema but the migration
// bookkeeping (enrollments, groups, registrations, settings, pending challenges, the certificate
// inventory with its revocation version, and the audit log with its sequence numbers), row for
// row, as one consistent snapshot of the source (a server may keep running on it; what it writes
// after the snapshot is not copied) and in one target transaction, so a failed copy leaves the
// target as it was. Both stores are first brought to
// this binary's schema version. It refuses, with kFailedPrecondition and changing nothing, a
// target that already holds rows, unless force (then those rows are replaced). It writes a
// progress line per table to progress and returns the counts, which it has verified equal;
// kInternal when they are not.
Result<std::vector<TableCount>> MigrateStore(const MigrateOptions& options, std::ostream& progress);

// AddMigrateCommand registers `devid migrate` on app. On failure it prints the error to stderr
// and sets exit_code to 1.
void AddMigrateCommand(CLI::App& app, int& exit_code);

}  // namespace devid::cli
