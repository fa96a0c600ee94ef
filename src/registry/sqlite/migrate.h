#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "registry/migrations/migration.h"
#include "registry/sqlite/connection.h"

namespace devid::registry::sqlite {

// ApplyMigrations brings db's schema up to the last of migrations (in version order, numbered
// 1, 2, ... without gaps). In one immediate transaction it creates the schema_migrations table if
// needed, runs every step whose version is not recorded there, and records each with now_us; so
// it is idempotent, and two processes opening the same file at once apply each step once. It
// fails, changing nothing, with kFailedPrecondition when the database records a version this
// binary does not know (it was written by a newer devid), and with the failing step's error
// otherwise.
Status ApplyMigrations(Connection& db, std::span<const Migration> migrations, int64_t now_us);

}  // namespace devid::registry::sqlite
