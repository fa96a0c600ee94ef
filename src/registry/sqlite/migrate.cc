#include "registry/sqlite/migrate.h"

#include <string>

namespace devid::registry::sqlite {
namespace {

Status ApplyPending(Connection& db, std::span<const Migration> migrations, int64_t now_us) {
  DEVID_TRY(db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"));
  int64_t current = 0;
  {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt,
                           db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row) current = stmt->ColumnInt64(0);
  }
  int64_t known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known) {
    return std::unexpected(
        FailedPrecondition("the database schema is at version " + std::to_string(current) +
                           " but this devid knows versions up to " + std::to_string(known) +
                           "; it was written by a newer devid"));
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    std::string step =
        "applying schema migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    if (auto s = db.Exec(m.sql); !s) return std::unexpected(s.error().WithContext(step));
    DEVID_ASSIGN_OR_RETURN(
        StatementRef insert,
        db.Prepare(
            "INSERT INTO schema_migrations (version, name, applied_us) VALUES (?1, ?2, ?3)"));
    insert->BindInt64(1, m.version);
    insert->BindText(2, m.name);
    insert->BindInt64(3, now_us);
    if (auto s = insert->Run(); !s) return std::unexpected(s.error().WithContext(step));
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
  // IMMEDIATE takes the write lock before reading the version, so a second process waits for the
  // first to finish instead of applying the same step again.
  if (auto s = db.Exec("BEGIN IMMEDIATE"); !s) {
    return std::unexpected(s.error().WithContext("migrating the database schema"));
  }
  Status applied = ApplyPending(db, migrations, now_us);
  if (applied) applied = db.Exec("COMMIT");
  if (!applied) {
    if (db.InTransaction()) (void)db.Exec("ROLLBACK");
    return std::unexpected(applied.error().WithContext("migrating the database schema"));
  }
  return Ok();
}

}  // namespace devid::registry::sqlite
