#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace devid::registry::sqlite {

// Statement owns one prepared sqlite3_stmt. Bind errors are remembered and reported by the next
// Step, so callers bind a row of parameters without checking each one. Move-only.
class Statement {
 public:
  Statement() = default;
  // Statement takes ownership of stmt.
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // BindText binds value to the 1-based parameter index without copying it: value must stay valid
  // until the statement is reset.
  void BindText(int index, std::string_view value);
  // BindInt64 binds value to the 1-based parameter index.
  void BindInt64(int index, int64_t value);
  // BindBlob binds value as a BLOB (an empty value is a zero-length BLOB, not NULL), without
  // copying it, like BindText.
  void BindBlob(int index, std::string_view value);

  // Step runs the statement to its next row: true when a row is ready to read, false when done.
  // It fails with the bind error, if any, or SQLite's error mapped to a code (ErrorFromSqlite).
  Result<bool> Step();
  // Run steps the statement once, for statements whose rows (if any) the caller ignores.
  Status Run();

  // ColumnText returns the 0-based column of the current row as text ("" for NULL).
  std::string ColumnText(int index) const;
  // ColumnBlob returns the 0-based column of the current row as bytes ("" for NULL).
  std::string ColumnBlob(int index) const;
  // ColumnInt64 returns the 0-based column of the current row as an integer (0 for NULL).
  int64_t ColumnInt64(int index) const;

  // Reset makes the statement ready to run again and drops its bindings.
  void Reset();

  // sql returns the statement's text, for error messages.
  std::string_view sql() const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = 0;  // the first failed bind's result code since the last Reset
};

// StatementRef lends a cached Statement of a Connection and resets it when it goes out of scope,
// so the next borrower starts clean. It must not outlive its Connection. Move-only.
class StatementRef {
 public:
  explicit StatementRef(Statement* statement) : statement_(statement) {}
  StatementRef(StatementRef&& other) noexcept : statement_(other.statement_) {
    other.statement_ = nullptr;
  }
  StatementRef& operator=(StatementRef&&) = delete;
  StatementRef(const StatementRef&) = delete;
  StatementRef& operator=(const StatementRef&) = delete;
  ~StatementRef() {
    if (statement_ != nullptr) statement_->Reset();
  }

  Statement* operator->() const { return statement_; }
  Statement& operator*() const { return *statement_; }

 private:
  Statement* statement_;
};

// ConnectionOptions says how Connection::Open sets up a connection.
struct ConnectionOptions {
  // read_only makes the connection refuse writes (PRAGMA query_only) and skips the write setup.
  bool read_only = false;
  // busy_timeout_ms is how long a statement waits for another connection's lock before failing
  // with kUnavailable.
  int busy_timeout_ms = 5000;
};

// Connection owns one sqlite3 database handle and a cache of its prepared statements. It is used
// by one thread at a time (it is opened without SQLite's per-connection mutex). Move-only.
class Connection {
 public:
  // Open opens (creating it if needed) the database file at path. A writable connection is put in
  // WAL mode with synchronous=FULL (a committed transaction survives power loss), foreign keys
  // on and a busy timeout. It fails with kUnavailable when the file cannot be opened or set up.
  static Result<Connection> Open(const std::string& path, const ConnectionOptions& options);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Exec runs one or more SQL statements that return no rows the caller needs (DDL, PRAGMA).
  Status Exec(std::string_view sql);

  // Prepare returns the cached statement for sql, preparing it on first use. The statement stays
  // owned by the connection; the returned StatementRef resets it on destruction.
  Result<StatementRef> Prepare(std::string_view sql);

  // SyncLog syncs the WAL file to disk: what commits made with synchronous=NORMAL wrote. It does
  // nothing when the connection has no WAL open.
  Status SyncLog();

  // InTransaction reports whether a transaction is open (SQLite rolls one back by itself after
  // some errors, such as a full disk).
  bool InTransaction() const;

  // handle returns the underlying sqlite3 handle, which stays owned by the connection.
  sqlite3* handle() const { return db_; }

 private:
  explicit Connection(sqlite3* db);
  void Close();

  // SqlHash lets the cache be searched by string_view without building a string.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>()(sql); }
  };

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>> cache_;
};

// ErrorFromSqlite turns SQLite result code rc on db into an Error whose message is
// "action: SQLite's message". Busy and locked databases map to kUnavailable, a full disk or
// database to kResourceExhausted, a taken primary key or UNIQUE value to kAlreadyExists (as
// PostgreSQL's unique violation maps), other constraint violations to kFailedPrecondition, others
// to kInternal. db may be null.
Error ErrorFromSqlite(sqlite3* db, int rc, std::string_view action);

}  // namespace devid::registry::sqlite
