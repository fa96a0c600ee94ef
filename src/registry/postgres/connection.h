#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"

struct pg_conn;
struct pg_result;

namespace devid::registry::postgres {

// Rows is the result of one statement that succeeded: text values by row and column. Move-only;
// it owns the libpq result.
class Rows {
 public:
  // Rows takes ownership of result (which may be null for "no rows").
  explicit Rows(pg_result* result);
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool empty() const { return size() == 0; }
  // Text returns the value at row, col as text ("" for NULL).
  std::string Text(int row, int col) const;
  // Int returns the value at row, col as an integer (0 for NULL or text that is not a number).
  int64_t Int(int row, int col) const;
  // Bool reads PostgreSQL's boolean text ("t"/"f").
  bool Bool(int row, int col) const;
  // get returns the libpq result, still owned by this object.
  pg_result* get() const { return result_; }

 private:
  pg_result* result_ = nullptr;
};

// Connection owns one libpq connection and the statements prepared on it. It is used by one
// thread at a time. Move-only.
class Connection {
 public:
  // Open connects with conninfo (a postgresql:// URL or key=value string). It fails with
  // kUnavailable naming the server's cause; the message never holds the password.
  static Result<Connection> Open(const std::string& conninfo);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Exec runs sql as a simple query (one or more statements, no parameters): for BEGIN, COMMIT,
  // DDL and migrations.
  Status Exec(std::string_view sql);

  // Run runs sql with text parameters $1..$n, preparing it on this connection on first use and
  // reusing the prepared statement afterwards. Errors map SQLSTATE to codes (ErrorFromSqlState);
  // a parameter holding a NUL fails with kInvalidArgument before anything is sent.
  Result<Rows> Run(std::string_view sql, const std::vector<std::string_view>& params);

  // BeginCopy starts `COPY ... FROM STDIN` (sql); PutCopyData sends rows in COPY's text format
  // (PostgreSQL COPY: tab-separated, backslash escapes, one row per line) and EndCopy finishes,
  // reporting the server's verdict on all of it. For bulk loads (`devid migrate`).
  Status BeginCopy(std::string_view sql);
  Status PutCopyData(std::string_view data);
  Status EndCopy();

  // healthy reports whether the connection is still usable; a pool drops one that is not.
  bool healthy() const;
  // in_transaction reports whether a transaction block is open (or failed and not yet ended).
  bool in_transaction() const;

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  Error LastError(pg_result* result, std::string_view action) const;

  pg_conn* conn_ = nullptr;
  // prepared_ maps SQL text to the name of its prepared statement on this connection.
  std::unordered_map<std::string, std::string> prepared_;
};

// ErrorFromSqlState maps a SQLSTATE to a code: unique violations to kAlreadyExists, other
// integrity violations to kFailedPrecondition, data exceptions (such as text that is not valid in
// the database's encoding) to kInvalidArgument, serialization failures and deadlocks to kAborted
// (the transaction may be retried), connection failures and shutdowns to kUnavailable, resource
// limits to kResourceExhausted, anything else to kInternal.
ErrorCode ErrorFromSqlState(std::string_view sqlstate);

// Pool lends connections to one database, opening them on demand up to a limit and dropping any
// that broke. Thread-safe.
class Pool {
 public:
  // Lease is one borrowed connection, returned (or, when broken, closed) on destruction. It must
  // not outlive the pool. Move-only.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_ != nullptr) pool_->Return(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // Pool opens nothing yet; max_size (at least 1) caps the connections open at once, and a
  // borrower waits up to wait_timeout for one.
  Pool(std::string conninfo, size_t max_size, std::chrono::milliseconds wait_timeout);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Acquire lends an idle connection, opens a new one while under the limit, or waits for one to
  // be returned. It fails with Connection::Open's error, or kUnavailable after wait_timeout.
  Result<Lease> Acquire();

  // DropIdle closes the idle connections. A borrower that found its connection broken calls it:
  // the others were opened to the same server and have most likely broken too.
  void DropIdle();

 private:
  void Return(std::unique_ptr<Connection> conn);

  const std::string conninfo_;
  const size_t max_size_;
  const std::chrono::milliseconds wait_timeout_;
  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  size_t open_ = 0;                                // guarded by mu_: idle and lent
};

}  // namespace devid::registry::postgres
