#include "registry/sqlite/connection.h"

#include <sqlite3.h>

#include <mutex>
#include <utility>

namespace devid::registry::sqlite {

namespace {

ErrorCode CodeForSqlite(int rc) {
  // Only extended codes tell a duplicate key from other constraint violations.
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
    return ErrorCode::kAlreadyExists;
  }
  switch (rc & 0xff) {  // the primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      return ErrorCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ErrorCode::kResourceExhausted;
    case SQLITE_CONSTRAINT:
      return ErrorCode::kFailedPrecondition;
    default:
      return ErrorCode::kInternal;
  }
}

// TurnOffMemoryStatistics turns off SQLITE_CONFIG_MEMSTATUS. With it on, SQLite takes one global
// mutex on every malloc and free to keep allocation statistics, and with a reader connection per
// handler thread plus the writer thread that mutex was contended on every query
// (bench/RESULTS.md). The statistics only serve sqlite3_memory_used, sqlite3_status64 and the
// heap limits, which devid does not use
// (https://www.sqlite.org/c3ref/c_config_covering_index_scan.html#sqliteconfigmemstatus).
// The setting must precede SQLite's initialization; if something in the process initialized SQLite
// first, sqlite3_config refuses and nothing changes.
void TurnOffMemoryStatistics() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

Error ErrorFromSqlite(sqlite3* db, int rc, std::string_view action) {
  std::string message(action);
  message += ": ";
  // sqlite3_errmsg describes the connection's most recent failure, which is rc's only while no
  // other call intervened; fall back to the code's generic text when the two disagree.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }
  return Error(CodeForSqlite(rc), std::move(message));
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_rc_ = other.bind_rc_;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::BindText(int index, std::string_view value) {
  // A null pointer would bind SQL NULL; an empty value is an empty string.
  const char* data = value.data() != nullptr ? value.data() : "";
  int rc = sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindBlob(int index, std::string_view value) {
  // A null pointer would bind SQL NULL; an empty value is a zero-length BLOB.
  const char* data = value.data() != nullptr ? value.data() : "";
  int rc = sqlite3_bind_blob64(stmt_, index, data, value.size(), SQLITE_STATIC);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

Result<bool> Statement::Step() {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) {
    return std::unexpected(ErrorFromSqlite(db, bind_rc_, "binding parameters"));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(ErrorFromSqlite(db, sqlite3_extended_errcode(db), "running SQL"));
}

Status Statement::Run() {
  DEVID_TRY(Step());
  return Ok();
}

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

std::string Statement::ColumnBlob(int index) const {
  const void* blob = sqlite3_column_blob(stmt_, index);
  if (blob == nullptr) return std::string();
  return std::string(static_cast<const char*>(blob),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

int64_t Statement::ColumnInt64(int index) const { return sqlite3_column_int64(stmt_, index); }

void Statement::Reset() {
  sqlite3_reset(stmt_);
  // Bindings point into caller memory (SQLITE_STATIC); drop them so none can dangle.
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

std::string_view Statement::sql() const {
  const char* text = sqlite3_sql(stmt_);
  return text != nullptr ? std::string_view(text) : std::string_view();
}

Connection::Connection(sqlite3* db) : db_(db) {}

Connection::Connection(Connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), cache_(std::move(other.cache_)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    Close();
    db_ = std::exchange(other.db_, nullptr);
    cache_ = std::move(other.cache_);
  }
  return *this;
}

Connection::~Connection() { Close(); }

void Connection::Close() {
  // Statements must be finalized before their connection closes.
  cache_.clear();
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Result<Connection> Connection::Open(const std::string& path, const ConnectionOptions& options) {
  TurnOffMemoryStatistics();
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (!options.read_only) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // sqlite3_open_v2 allocates a handle even on failure; it carries the error message.
  Connection conn(raw);
  if (rc != SQLITE_OK) {
    return std::unexpected(ErrorFromSqlite(raw, rc, "opening database " + path));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);

  auto setup_error = [&path](const Error& e) {
    return Unavailable("setting up database " + path + ": " + e.message());
  };
  if (options.read_only) {
    if (auto s = conn.Exec("PRAGMA query_only = ON"); !s) {
      return std::unexpected(setup_error(s.error()));
    }
    return conn;
  }
  // journal_mode answers with the mode in effect, which stays the old one when WAL is impossible
  // (for example on a file system without shared memory).
  {
    auto stmt = conn.Prepare("PRAGMA journal_mode = WAL");
    if (!stmt) return std::unexpected(setup_error(stmt.error()));
    auto row = (*stmt)->Step();
    if (!row) return std::unexpected(setup_error(row.error()));
    std::string mode = *row ? (*stmt)->ColumnText(0) : "";
    if (mode != "wal") {
      return std::unexpected(Unavailable("setting up database " + path +
                                         ": WAL mode is unavailable (journal mode stays \"" + mode +
                                         "\"); it needs a file on a local file system"));
    }
  }
  // synchronous=FULL syncs the WAL on every commit, so a write that returned survives power loss
  // (https://www.sqlite.org/pragma.html#pragma_synchronous).
  if (auto s = conn.Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON"); !s) {
    return std::unexpected(setup_error(s.error()));
  }
  return conn;
}

Status Connection::Exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Ok();
  std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return std::unexpected(Error(CodeForSqlite(rc), "running SQL: " + detail));
}

Status Connection::SyncLog() {
  // The WAL's file object, as SQLite's own commits sync it
  // (https://www.sqlite.org/c3ref/c_fcntl_begin_atomic_write.html#sqlitefcntljournalpointer).
  sqlite3_file* log = nullptr;
  int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log);
  if (rc != SQLITE_OK) {
    return std::unexpected(
        Error(CodeForSqlite(rc), "finding the WAL file: " + std::string(sqlite3_errstr(rc))));
  }
  if (log == nullptr || log->pMethods == nullptr) return Ok();
  rc = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
  if (rc != SQLITE_OK) {
    return std::unexpected(
        Error(CodeForSqlite(rc), "syncing the WAL file: " + std::string(sqlite3_errstr(rc))));
  }
  return Ok();
}

Result<StatementRef> Connection::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return StatementRef(it->second.get());
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return std::unexpected(ErrorFromSqlite(db_, rc, "preparing SQL"));
  }
  auto statement = std::make_unique<Statement>(raw);
  Statement* ptr = statement.get();
  cache_.emplace(std::string(sql), std::move(statement));
  return StatementRef(ptr);
}

bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace devid::registry::sqlite
