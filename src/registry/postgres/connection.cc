#include "registry/postgres/connection.h"

#include <libpq-fe.h>

#include <charconv>
#include <utility>

namespace devid::registry::postgres {
namespace {

// TrimmedMessage drops the trailing newline libpq ends its messages with.
std::string TrimmedMessage(const char* message) {
  std::string out = message != nullptr ? message : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown error" : out;
}

}  // namespace

ErrorCode ErrorFromSqlState(std::string_view sqlstate) {
  // PostgreSQL Appendix A: the first two characters are the class.
  if (sqlstate == "23505") return ErrorCode::kAlreadyExists;
  if (sqlstate == "40001" || sqlstate == "40P01") return ErrorCode::kAborted;
  std::string_view cls = sqlstate.substr(0, 2);
  if (cls == "23") return ErrorCode::kFailedPrecondition;
  if (cls == "22") return ErrorCode::kInvalidArgument;  // data exceptions: bad encoding, range
  if (cls == "08" || cls == "57") return ErrorCode::kUnavailable;  // connection, operator action
  if (cls == "53") return ErrorCode::kResourceExhausted;
  return ErrorCode::kInternal;
}

Rows::Rows(pg_result* result) : result_(result) {}

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Rows::~Rows() { PQclear(result_); }

int Rows::size() const { return result_ == nullptr ? 0 : PQntuples(result_); }

std::string Rows::Text(int row, int col) const {
  if (PQgetisnull(result_, row, col)) return "";
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t Rows::Int(int row, int col) const {
  if (PQgetisnull(result_, row, col)) return 0;
  const char* value = PQgetvalue(result_, row, col);
  const char* end = value + PQgetlength(result_, row, col);
  int64_t out = 0;
  std::from_chars(value, end, out);
  return out;
}

bool Rows::Bool(int row, int col) const {
  return !PQgetisnull(result_, row, col) && PQgetvalue(result_, row, col)[0] == 't';
}

Result<Connection> Connection::Open(const std::string& conninfo) {
  // The URL comes last so that what it sets wins over these defaults.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"10", "devid", conninfo.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return std::unexpected(Unavailable("connecting to PostgreSQL: out of memory"));
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = "connecting to PostgreSQL: " + TrimmedMessage(PQerrorMessage(conn));
    PQfinish(conn);
    return std::unexpected(Unavailable(std::move(message)));
  }
  // Notices (such as "relation already exists, skipping") are for interactive sessions; the
  // server's own log keeps them.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return Connection(conn);
}

Connection::Connection(Connection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), prepared_(std::move(other.prepared_)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
    prepared_ = std::move(other.prepared_);
  }
  return *this;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::healthy() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

bool Connection::in_transaction() const {
  PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

Error Connection::LastError(pg_result* result, std::string_view action) const {
  std::string message(action);
  message += ": ";
  if (!healthy()) {
    message += TrimmedMessage(PQerrorMessage(conn_));
    return Unavailable(std::move(message));
  }
  const char* sqlstate = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  message +=
      TrimmedMessage(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (sqlstate == nullptr) return Internal(std::move(message));
  return Error(ErrorFromSqlState(sqlstate), std::move(message));
}

Status Connection::Exec(std::string_view sql) {
  Rows result(PQexec(conn_, std::string(sql).c_str()));
  ExecStatusType status =
      result.get() == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string action =
        "running \"" + std::string(sql.substr(0, 40)) + (sql.size() > 40 ? "...\"" : "\"");
    return std::unexpected(LastError(result.get(), action));
  }
  return Ok();
}

Result<Rows> Connection::Run(std::string_view sql, const std::vector<std::string_view>& params) {
  auto found = prepared_.find(std::string(sql));
  if (found == prepared_.end()) {
    std::string name = "devid_" + std::to_string(prepared_.size() + 1);
    Rows prepared(PQprepare(conn_, name.c_str(), std::string(sql).c_str(), 0, nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      return std::unexpected(LastError(prepared.get(), "preparing a statement"));
    }
    found = prepared_.emplace(std::string(sql), std::move(name)).first;
  }
  // Text parameters travel NUL-terminated, and PostgreSQL text cannot hold a NUL: refuse one
  // rather than store a truncated value.
  for (std::string_view param : params) {
    if (param.find('\0') != std::string_view::npos) {
      return std::unexpected(
          InvalidArgument("a value holds a NUL character, which the store cannot keep"));
    }
  }
  std::vector<std::string> copies(params.begin(), params.end());
  std::vector<const char*> values;
  values.reserve(copies.size());
  for (const std::string& copy : copies) values.push_back(copy.c_str());
  pg_result* raw = PQexecPrepared(conn_, found->second.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, /*resultFormat=*/0);
  Rows rows(raw);
  ExecStatusType status = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return std::unexpected(LastError(raw, "running a statement"));
  }
  return rows;
}

Status Connection::BeginCopy(std::string_view sql) {
  Rows result(PQexec(conn_, std::string(sql).c_str()));
  if (result.get() == nullptr || PQresultStatus(result.get()) != PGRES_COPY_IN) {
    return std::unexpected(LastError(result.get(), "starting a bulk copy"));
  }
  return Ok();
}

Status Connection::PutCopyData(std::string_view data) {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    return std::unexpected(LastError(nullptr, "sending bulk copy data"));
  }
  return Ok();
}

Status Connection::EndCopy() {
  if (PQputCopyEnd(conn_, nullptr) != 1) {
    return std::unexpected(LastError(nullptr, "ending a bulk copy"));
  }
  // The copy's outcome, then the end of the command's results.
  Status status = Ok();
  while (pg_result* raw = PQgetResult(conn_)) {
    Rows result(raw);
    if (status && PQresultStatus(raw) != PGRES_COMMAND_OK) {
      status = std::unexpected(LastError(raw, "bulk copy"));
    }
  }
  return status;
}

Pool::Pool(std::string conninfo, size_t max_size, std::chrono::milliseconds wait_timeout)
    : conninfo_(std::move(conninfo)),
      max_size_(max_size == 0 ? 1 : max_size),
      wait_timeout_(wait_timeout) {}

Result<Pool::Lease> Pool::Acquire() {
  {
    std::unique_lock lock(mu_);
    if (!returned_.wait_for(lock, wait_timeout_,
                            [this] { return !idle_.empty() || open_ < max_size_; })) {
      return std::unexpected(Unavailable("waiting for a PostgreSQL connection: all " +
                                         std::to_string(max_size_) + " are busy"));
    }
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;  // reserve the slot while connecting outside the lock
  }
  auto conn = Connection::Open(conninfo_);
  if (!conn) {
    {
      std::lock_guard lock(mu_);
      --open_;
    }
    returned_.notify_one();
    return std::unexpected(conn.error());
  }
  return Lease(this, std::make_unique<Connection>(std::move(*conn)));
}

void Pool::DropIdle() {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(idle_);
    open_ -= dropped.size();
  }
  returned_.notify_all();
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  // A connection left inside a transaction (a borrower failed between BEGIN and its end) or
  // broken is closed rather than lent again.
  bool keep = conn->healthy() && !conn->in_transaction();
  if (!keep) conn.reset();
  {
    std::lock_guard lock(mu_);
    if (keep) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
  }
  returned_.notify_one();
}

}  // namespace devid::registry::postgres
