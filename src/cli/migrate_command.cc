#include "cli/migrate_command.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <set>
#include <string_view>

#include "base/clock.h"
#include "base/hex.h"
#include "base/random.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/postgres_registry.h"
#include "registry/sqlite/connection.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::cli {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr size_t kCopyChunk = 256 * 1024;
constexpr int64_t kProgressEvery = 5000;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// QuoteIdentifier quotes a table or column name for SQL (both dialects double the quote).
std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// AppendCopyValue appends value in COPY's text format: backslash, tab, newline and carriage
// return are escaped (PostgreSQL COPY, "Text Format").
void AppendCopyValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

// SourceTable is one table to copy: its name, its columns in order (and which of them are
// BLOBs) and its row count.
struct SourceTable {
  std::string name;
  std::vector<std::string> columns;
  std::vector<bool> binary;
  int64_t rows = 0;
};

Result<int64_t> SqliteCount(registry::sqlite::Connection& db, const std::string& table) {
  DEVID_ASSIGN_OR_RETURN(registry::sqlite::StatementRef stmt,
                         db.Prepare("SELECT COUNT(*) FROM " + QuoteIdentifier(table)));
  DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? stmt->ColumnInt64(0) : 0;
}

// SourceTables lists the source's data tables (all but SQLite's own, the migration bookkeeping,
// which each store keeps for itself, and the change counter only SQLite's row cache reads), with
// their columns and row counts.
Result<std::vector<SourceTable>> SourceTables(registry::sqlite::Connection& db) {
  std::vector<SourceTable> tables;
  {
    DEVID_ASSIGN_OR_RETURN(
        registry::sqlite::StatementRef stmt,
        db.Prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'sqlite_%' AND name NOT IN ('schema_migrations', 'change_counter') ORDER BY name"));
    for (;;) {
      DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      tables.push_back({stmt->ColumnText(0), {}, {}, 0});
    }
  }
  for (SourceTable& table : tables) {
    DEVID_ASSIGN_OR_RETURN(registry::sqlite::StatementRef stmt,
                           db.Prepare("SELECT name, upper(type) FROM pragma_table_info(" +
                                      QuoteIdentifier(table.name) + ") ORDER BY cid"));
    for (;;) {
      DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      table.columns.push_back(stmt->ColumnText(0));
      table.binary.push_back(stmt->ColumnText(1) == "BLOB");
    }
    DEVID_ASSIGN_OR_RETURN(table.rows, SqliteCount(db, table.name));
  }
  return tables;
}

// CheckTargetTable makes sure the target has the table with the same columns (the dialects'
// migrations mirror each other) and returns how many rows it already holds.
Result<int64_t> CheckTargetTable(registry::postgres::Connection& pg, const SourceTable& table) {
  DEVID_ASSIGN_OR_RETURN(registry::postgres::Rows columns,
                         pg.Run("SELECT column_name FROM information_schema.columns "
                                "WHERE table_schema = current_schema() AND table_name = $1",
                                {table.name}));
  std::set<std::string> target;
  for (int i = 0; i < columns.size(); ++i) target.insert(columns.Text(i, 0));
  std::set<std::string> source(table.columns.begin(), table.columns.end());
  if (target != source) {
    return std::unexpected(
        FailedPrecondition("table " + table.name +
                           " has different columns in the source and the target; are both "
                           "at the same schema version?"));
  }
  DEVID_ASSIGN_OR_RETURN(registry::postgres::Rows count,
                         pg.Run("SELECT COUNT(*) FROM " + QuoteIdentifier(table.name), {}));
  return count.Int(0, 0);
}

// CopyTable streams one table's rows from the source's snapshot into the target.
Status CopyTable(registry::sqlite::Connection& source, registry::postgres::Connection& pg,
                 const SourceTable& table, std::ostream& progress, bool live) {
  std::string columns;
  for (const std::string& column : table.columns) {
    if (!columns.empty()) columns += ", ";
    columns += QuoteIdentifier(column);
  }
  DEVID_ASSIGN_OR_RETURN(registry::sqlite::StatementRef stmt,
                         source.Prepare("SELECT " + columns + " FROM " +
                                        QuoteIdentifier(table.name) + " ORDER BY rowid"));
  DEVID_TRY(pg.BeginCopy("COPY " + QuoteIdentifier(table.name) + " (" + columns + ") FROM STDIN"));
  std::string chunk;
  int64_t copied = 0;
  auto report = [&](bool done) {
    if (!live && !done) return;
    progress << (live ? "\r" : "") << "migrate: " << table.name << ": " << copied << "/"
             << table.rows << " rows" << (done ? "\n" : "") << std::flush;
  };
  for (;;) {
    auto row = stmt->Step();
    if (!row) {
      (void)pg.EndCopy();  // the transaction is rolled back by the caller
      return std::unexpected(row.error().WithContext("reading " + table.name));
    }
    if (!*row) break;
    for (size_t i = 0; i < table.columns.size(); ++i) {
      if (i > 0) chunk += '\t';
      int column = static_cast<int>(i);
      if (table.binary[i]) {
        // A BLOB goes to a BYTEA column in bytea's hex text form (PostgreSQL §8.4.1); raw bytes
        // could hold NULs or text that is not valid in the connection's encoding.
        AppendCopyValue(chunk, "\\x" + HexEncode(stmt->ColumnBlob(column)));
      } else {
        AppendCopyValue(chunk, stmt->ColumnText(column));
      }
    }
    chunk += '\n';
    ++copied;
    if (chunk.size() >= kCopyChunk) {
      DEVID_TRY(pg.PutCopyData(chunk));
      chunk.clear();
    }
    if (copied % kProgressEvery == 0) report(false);
  }
  if (!chunk.empty()) DEVID_TRY(pg.PutCopyData(chunk));
  if (auto ended = pg.EndCopy(); !ended) {
    return std::unexpected(ended.error().WithContext("copying " + table.name));
  }
  report(true);
  return Ok();
}

// CopyAll runs the copy inside the target transaction the caller opened.
Status CopyAll(registry::sqlite::Connection& source, registry::postgres::Connection& pg,
               const std::vector<SourceTable>& tables, const MigrateOptions& options,
               std::ostream& progress) {
  std::string occupied;
  for (const SourceTable& table : tables) {
    DEVID_ASSIGN_OR_RETURN(int64_t existing, CheckTargetTable(pg, table));
    if (existing > 0) {
      occupied +=
          (occupied.empty() ? "" : ", ") + table.name + " (" + std::to_string(existing) + " rows)";
    }
  }
  if (!occupied.empty()) {
    if (!options.force) {
      return std::unexpected(FailedPrecondition("the target is not empty: it holds " + occupied +
                                                "; pass --force to replace its contents"));
    }
    std::string names;
    for (const SourceTable& table : tables) {
      names += (names.empty() ? "" : ", ") + QuoteIdentifier(table.name);
    }
    DEVID_TRY(pg.Exec("TRUNCATE " + names + " RESTART IDENTITY"));
  }
  for (const SourceTable& table : tables) {
    DEVID_TRY(CopyTable(source, pg, table, progress, options.live_progress));
  }
  // The audit log keeps its sequence numbers; new records continue after the last one.
  DEVID_TRY(
      pg.Run("SELECT setval(pg_get_serial_sequence('audit_log', 'sequence'), "
             "(SELECT COALESCE(MAX(sequence), 0) FROM audit_log) + 1, false)",
             {}));
  return Ok();
}

}  // namespace

Result<std::vector<TableCount>> MigrateStore(const MigrateOptions& options,
                                             std::ostream& progress) {
  if (!StartsWith(options.from, kSqliteScheme)) {
    return std::unexpected(
        InvalidArgument("--from must be a sqlite:// URL, not \"" + options.from + "\""));
  }
  if (!StartsWith(options.to, "postgresql://") && !StartsWith(options.to, "postgres://")) {
    return std::unexpected(InvalidArgument("--to must be a postgresql:// URL"));
  }
  std::string path = options.from.substr(kSqliteScheme.size());
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return std::unexpected(NotFound("--from: there is no database file at " + path));
  }

  // Opening each store through its registry brings its schema to this binary's version, so the
  // two have the same tables and columns.
  SystemClock clock;
  SecureRandom random;
  {
    auto sqlite = registry::SqliteRegistry::Open(path, clock, random);
    if (!sqlite) return std::unexpected(sqlite.error().WithContext("opening the source"));
    auto pg = registry::PostgresRegistry::Open(options.to, clock, random);
    if (!pg) return std::unexpected(pg.error().WithContext("opening the target"));
  }

  registry::sqlite::ConnectionOptions read_only;
  read_only.read_only = true;
  DEVID_ASSIGN_OR_RETURN(registry::sqlite::Connection source,
                         registry::sqlite::Connection::Open(path, read_only));
  DEVID_ASSIGN_OR_RETURN(registry::postgres::Connection pg,
                         registry::postgres::Connection::Open(options.to));

  // One read transaction is one snapshot (WAL mode), however long the copy takes.
  DEVID_TRY(source.Exec("BEGIN"));
  DEVID_ASSIGN_OR_RETURN(std::vector<SourceTable> tables, SourceTables(source));

  DEVID_TRY(pg.Exec("BEGIN"));
  Status copied = CopyAll(source, pg, tables, options, progress);
  if (copied) copied = pg.Exec("COMMIT");
  if (!copied) {
    if (pg.healthy() && pg.in_transaction()) (void)pg.Exec("ROLLBACK");
    return std::unexpected(copied.error().WithContext("migrating " + path));
  }
  (void)source.Exec("COMMIT");

  std::vector<TableCount> counts;
  std::string mismatched;
  for (const SourceTable& table : tables) {
    DEVID_ASSIGN_OR_RETURN(registry::postgres::Rows rows,
                           pg.Run("SELECT COUNT(*) FROM " + QuoteIdentifier(table.name), {}));
    counts.push_back({table.name, table.rows, rows.Int(0, 0)});
    if (counts.back().target != table.rows) mismatched += " " + table.name;
  }
  if (!mismatched.empty()) {
    return std::unexpected(Internal("verifying the copy: row counts differ in" + mismatched));
  }
  return counts;
}

void AddMigrateCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<MigrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "migrate", "Copy a SQLite store to PostgreSQL (stop the nodes on the target first)");
  cmd->add_option("--from", options->from, "Source store: sqlite:///path/devid.db")->required();
  cmd->add_option("--to", options->to, "Target store: postgresql://user@host:port/db")->required();
  cmd->add_flag("--force", options->force, "Replace the target's contents when it is not empty");
  cmd->callback([options, &exit_code] {
    options->live_progress = ::isatty(STDOUT_FILENO) == 1;
    auto counts = MigrateStore(*options, std::cout);
    if (!counts) {
      std::cerr << "devid migrate: " << counts.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << "migrate: verified row counts (source = target):";
    const char* separator = " ";
    for (const TableCount& count : *counts) {
      std::cout << separator << count.table << " " << count.source << " = " << count.target;
      separator = ", ";
    }
    std::cout << "\nmigrate: done\n";
  });
}

}  // namespace devid::cli
