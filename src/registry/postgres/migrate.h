#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "registry/migrations/migration.h"
#include "registry/postgres/connection.h"

namespace devid::registry::postgres {

// kMigrationLockKey is the pg_advisory_lock key that serializes schema migrations across every
// devid node on a database ("devid" in ASCII, then 1).
inline constexpr int64_t kMigrationLockKey = 0x6465766964000001;

// ApplyMigrations brings db's schema up to the last of migrations (in version order, numbered
// 1, 2, ... without gaps). Holding the session advisory lock kMigrationLockKey, so that nodes
// starting at once take turns, it creates the schema_migrations table if needed and runs every
// step whose version is not recorded there, each step and its record (with now_us) in one
// transaction; so it is idempotent and each step runs once. It fails with kFailedPrecondition,
// changing nothing, when the database records a version this binary does not know (a newer devid
// wrote it), and with the failing step's error otherwise (the steps before it stay applied).
// db must not be in a transaction; the lock is released before it returns.
Status ApplyMigrations(Connection& db, std::span<const Migration> migrations, int64_t now_us);

}  // namespace devid::registry::postgres
