#include "registry/postgres/migrate.h"

#include <string>

namespace devid::registry::postgres {
namespace {

Status ApplyPending(Connection& db, std::span<const Migration> migrations, int64_t now_us) {
  DEVID_TRY(db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"));
  DEVID_ASSIGN_OR_RETURN(Rows rows,
                         db.Run("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
  int64_t current = rows.empty() ? 0 : rows.Int(0, 0);
  int64_t known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known) {
    return std::unexpected(
        FailedPrecondition("the database schema is at version " + std::to_string(current) +
                           " but this devid knows versions up to " + std::to_string(known) +
                           "; it was written by a newer devid"));
  }
  std::string now = std::to_string(now_us);
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    std::string step =
        "applying schema migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    std::string version = std::to_string(m.version);
    Status applied = db.Exec("BEGIN");
    if (applied) applied = db.Exec(m.sql);
    if (applied) {
      auto recorded =
          db.Run("INSERT INTO schema_migrations (version, name, applied_us) VALUES ($1, $2, $3)",
                 {version, m.name, now});
      if (!recorded) applied = std::unexpected(recorded.error());
    }
    if (applied) applied = db.Exec("COMMIT");
    if (!applied) {
      if (db.in_transaction()) (void)db.Exec("ROLLBACK");
      return std::unexpected(applied.error().WithContext(step));
    }
  }
  return Ok();
}

}  // namespace

Status ApplyMigrations(Connection& db, std::span<const Migration> migrations, int64_t now_us) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return std::unexpected(Internal("schema migration " + std::to_string(i + 1) +
                                      " is numbered " + std::to_string(migrations[i].version)));
    }
  }
  std::string key = std::to_string(kMigrationLockKey);
  if (auto locked = db.Run("SELECT pg_advisory_lock($1::bigint)", {key}); !locked) {
    return std::unexpected(locked.error().WithContext("migrating the database schema"));
  }
  Status applied = ApplyPending(db, migrations, now_us);
  // A session lock outlives transactions; release it even when a step failed. Closing the
  // connection would release it too.
  (void)db.Run("SELECT pg_advisory_unlock($1::bigint)", {key});
  if (!applied)
    return std::unexpected(applied.error().WithContext("migrating the database schema"));
  return Ok();
}

}  // namespace devid::registry::postgres
