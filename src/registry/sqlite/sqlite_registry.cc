#include "registry/sqlite/sqlite_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <tuple>
#include <utility>
#include <variant>

#include "registry/audit_chain.h"
#include "registry/ca_certificate_row.h"
#include "registry/ca_certificate_store.h"
#include "registry/certificate_sql.h"
#include "registry/migrations/sqlite_migrations.h"
#include "registry/row_codec.h"
#include "registry/sqlite/ca_certificate_queries.h"
#include "registry/sqlite/connection.h"
#include "registry/sqlite/group_commit.h"
#include "registry/sqlite/migrate.h"
#include "registry/sqlite/queries.h"
#include "registry/sqlite/read_pool.h"
#include "registry/sqlite/snapshot_cache.h"
#include "registry/store_codec.h"

namespace devid::registry {
namespace {

using store_codec::ToMicros;
using store_codec::FromMicros;
using store_codec::AttestationTypeName;
using store_codec::JoinHubs;
using store_codec::EncodeContinuation;
using store_codec::DecodeContinuation;
using store_codec::ClampPageSize;
using store_codec::ValidateId;
using store_codec::ValidateSettings;
using store_codec::kEtagBytes;
using store_codec::kMaxPageItems;
using store_codec::NotFoundMessage;

using sqlite::Connection;
using sqlite::Statement;
using sqlite::StatementRef;

// Params binds a statement's parameters in order, starting at ?1.
class Params {
 public:
  explicit Params(Statement& stmt) : stmt_(stmt) {}
  void Text(std::string_view value) { stmt_.BindText(next_++, value); }
  void Int(int64_t value) { stmt_.BindInt64(next_++, value); }
  void Blob(std::string_view value) { stmt_.BindBlob(next_++, value); }

 private:
  Statement& stmt_;
  int next_ = 1;
};

// Columns reads the current row's columns in order, starting at the first.
class Columns {
 public:
  explicit Columns(const Statement& stmt) : stmt_(stmt) {}
  std::string Text() { return stmt_.ColumnText(next_++); }
  int64_t Int() { return stmt_.ColumnInt64(next_++); }
  bool Bool() { return Int() != 0; }
  std::chrono::system_clock::time_point Time() { return FromMicros(Int()); }
  Result<std::string> Blob() { return stmt_.ColumnBlob(next_++); }

 private:
  const Statement& stmt_;
  int next_ = 0;
};

using row_codec::BindSettings;

Result<Enrollment> ReadEnrollment(const Statement& stmt) {
  Columns c(stmt);
  return row_codec::ReadEnrollment(c);
}

Result<EnrollmentGroup> ReadGroup(const Statement& stmt) {
  Columns c(stmt);
  return row_codec::ReadGroup(c);
}

Result<Registration> ReadRegistration(const Statement& stmt) {
  Columns c(stmt);
  return row_codec::ReadRegistration(c);
}

Result<CertificateRecord> ReadCertificate(const Statement& stmt) {
  Columns c(stmt);
  return row_codec::ReadCertificate(c);
}

Result<CaCertificate> ReadCaCertificate(const Statement& stmt) {
  Columns c(stmt);
  return row_codec::ReadCaCertificate(c);
}

// BindValues binds a built query's values (certificate_sql.h), which must outlive the run.
void BindValues(Statement& stmt, const std::vector<certificate_sql::Value>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    if (const auto* text = std::get_if<std::string>(&values[i])) {
      stmt.BindText(index, *text);
    } else {
      stmt.BindInt64(index, std::get<int64_t>(values[i]));
    }
  }
}

// ByExpiry orders records as QueryCertificates does: not_after, then thumbprint.
bool ByExpiry(const CertificateRecord& a, const CertificateRecord& b) {
  return std::tie(a.not_after, a.sha256_thumbprint) < std::tie(b.not_after, b.sha256_thumbprint);
}

// ReadOne runs a statement expected to return at most one row and converts it with read_row.
template <typename T, typename ReadRow>
Result<T> ReadOne(Connection& db, std::string_view sql, std::string_view id, std::string_view noun,
                  ReadRow read_row) {
  DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sql));
  stmt->BindText(1, id);
  DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::unexpected(NotFound(NotFoundMessage(noun, id)));
  return read_row(*stmt);
}

// ReadPage reads the rows of a query bound to fetch one more than limit, and turns the extra
// row into a continuation.
template <typename T, typename ReadRow, typename KeyOf>
Result<Page<T>> ReadPage(Statement& stmt, int limit, ReadRow read_row, KeyOf key_of) {
  Page<T> page;
  for (;;) {
    DEVID_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (static_cast<int>(page.items.size()) == limit) {
      page.continuation = EncodeContinuation(key_of(page.items.back()));
      break;
    }
    DEVID_ASSIGN_OR_RETURN(T item, read_row(stmt));
    page.items.push_back(std::move(item));
  }
  return page;
}

// PinnedReader is the connection a ReadScope holds for its thread, in one read transaction, with
// the change counter as that transaction sees it once read.
struct PinnedReader {
  const sqlite::ReadPool* pool = nullptr;
  Connection* db = nullptr;
  std::optional<int64_t> change_count;
};
thread_local PinnedReader pinned_reader;

// WithReader runs fn on the connection this thread's ReadScope pinned, or else on a pooled one.
template <typename Fn>
auto WithReader(sqlite::ReadPool& pool, Fn fn) -> decltype(fn(std::declval<Connection&>())) {
  if (pinned_reader.pool == &pool) return fn(*pinned_reader.db);
  DEVID_ASSIGN_OR_RETURN(sqlite::ReadPool::Lease lease, pool.Acquire());
  return fn(*lease);
}

// RunCached runs sql (BEGIN, COMMIT) as a statement the connection keeps prepared: parsing it
// each time would cost as much as a read.
Status RunCached(Connection& db, std::string_view sql) {
  DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sql));
  return stmt->Run();
}

// RefreshPinnedSnapshot moves this thread's ReadScope on pool to a new snapshot, after this
// registry flushed writes its next read must see.
void RefreshPinnedSnapshot(const sqlite::ReadPool& pool) {
  if (pinned_reader.pool != &pool) return;
  // COMMIT ends a read transaction; the next statement after BEGIN starts a new one.
  (void)RunCached(*pinned_reader.db, "COMMIT");
  (void)RunCached(*pinned_reader.db, "BEGIN");
  pinned_reader.change_count.reset();
}

// ScopeChangeCount is the change counter as this thread's ReadScope on pool sees it, read once per
// snapshot; none outside a scope or when it cannot be read.
std::optional<int64_t> ScopeChangeCount(const sqlite::ReadPool& pool) {
  if (pinned_reader.pool != &pool) return std::nullopt;
  if (!pinned_reader.change_count) {
    auto stmt = pinned_reader.db->Prepare(sqlite::kSelectChangeCount);
    if (!stmt) return std::nullopt;
    auto row = (*stmt)->Step();
    if (!row || !*row) return std::nullopt;
    pinned_reader.change_count = (*stmt)->ColumnInt64(0);
  }
  return pinned_reader.change_count;
}

// ReadThrough is WithReader for reads of one row by key: inside a ReadScope it takes the value
// cache remembers as of the scope's snapshot, or reads it and remembers it, found or not found.
template <typename T, typename Read>
Result<T> ReadThrough(sqlite::ReadPool& pool, sqlite::SnapshotCache<Result<T>>& cache,
                      std::string_view key, Read read) {
  std::optional<int64_t> count = ScopeChangeCount(pool);
  if (!count) return WithReader(pool, read);
  if (std::optional<Result<T>> hit = cache.Find(key, *count)) return std::move(*hit);
  Result<T> value = read(*pinned_reader.db);
  if (value || value.error().code() == ErrorCode::kNotFound) cache.Remember(key, *count, value);
  return value;
}

// SqliteReadScope pins a pooled read connection to the thread in one read transaction.
class SqliteReadScope final : public Registry::ReadScope {
 public:
  explicit SqliteReadScope(sqlite::ReadPool::Lease lease) : lease_(std::move(lease)) {}
  ~SqliteReadScope() override {
    pinned_reader = PinnedReader{};
    (void)RunCached(*lease_, "COMMIT");
  }

 private:
  sqlite::ReadPool::Lease lease_;
};

// RowVersion is what a conditional write needs of the row it replaces.
struct RowVersion {
  std::string etag;
  int64_t created_us = 0;
};

Result<std::optional<RowVersion>> ReadVersion(Connection& db, std::string_view sql,
                                              std::string_view id) {
  DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sql));
  stmt->BindText(1, id);
  DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<RowVersion>();
  return RowVersion{stmt->ColumnText(0), stmt->ColumnInt64(1)};
}

// CheckIfMatch applies If-Match to the row a write would change (RFC 9110 §13.1.1: "*" matches
// any current row).
Status CheckIfMatch(const std::optional<RowVersion>& current,
                    const std::optional<std::string>& if_match, std::string_view action,
                    std::string_view noun, std::string_view id) {
  if (!if_match) return Ok();
  if (!current) return std::unexpected(NotFound(NotFoundMessage(noun, id)));
  if (*if_match != "*" && *if_match != current->etag) {
    return std::unexpected(FailedPrecondition(std::string(action) + " " + std::string(noun) +
                                              " \"" + std::string(id) + "\": etag mismatch"));
  }
  return Ok();
}

// AppendAudit chains the record to the last one read in this transaction, not to a value kept in
// memory: a group commit may roll back a write's savepoint, and its record with it.
Status AppendAudit(Connection& db, int64_t time_us, const Actor& actor, std::string_view action,
                   std::string_view object, std::string_view outcome = "success") {
  std::string previous;
  {
    DEVID_ASSIGN_OR_RETURN(StatementRef last, db.Prepare(sqlite::kLastAuditHash));
    DEVID_ASSIGN_OR_RETURN(bool row, last->Step());
    if (row) previous = last->ColumnText(0);
  }
  AuditRecord record{.time = FromMicros(time_us),
                     .actor = actor.name,
                     .action = std::string(action),
                     .object = std::string(object),
                     .outcome = std::string(outcome)};
  std::string chain_hash = AuditChainHash(previous, record);
  DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kInsertAudit));
  Params p(*stmt);
  p.Int(time_us);
  p.Text(actor.name);
  p.Text(action);
  p.Text(object);
  p.Text(outcome);
  p.Text(chain_hash);
  return stmt->Run();
}

// Table names the SQL and words for one kind of row deleted by DeleteRow.
struct Table {
  std::string_view noun;          // in messages
  std::string_view audit_prefix;  // before ".delete" in the audit log
  std::string_view version_sql;
  std::string_view delete_sql;
};

constexpr Table kEnrollments{"enrollment", "enrollment", sqlite::kEnrollmentVersion,
                             sqlite::kDeleteEnrollment};
constexpr Table kGroups{"enrollment group", "enrollmentGroup", sqlite::kGroupVersion,
                        sqlite::kDeleteGroup};
constexpr Table kRegistrations{"registration", "registration", sqlite::kRegistrationVersion,
                               sqlite::kDeleteRegistration};

Status DeleteRow(Connection& db, const Table& table, std::string_view id,
                 const std::optional<std::string>& if_match, const Actor& actor, int64_t now_us) {
  DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current, ReadVersion(db, table.version_sql, id));
  if (!current) return std::unexpected(NotFound(NotFoundMessage(table.noun, id)));
  DEVID_TRY(CheckIfMatch(current, if_match, "deleting", table.noun, id));
  DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(table.delete_sql));
  stmt->BindText(1, id);
  DEVID_TRY(stmt->Run());
  return AppendAudit(db, now_us, actor, std::string(table.audit_prefix) + ".delete", id);
}

// Stamp gives settings the etag and times of a write at now_us over current.
void Stamp(EnrollmentSettings& settings, const std::optional<RowVersion>& current, int64_t now_us,
           std::string etag) {
  settings.etag = std::move(etag);
  settings.updated = FromMicros(now_us);
  settings.created = FromMicros(current ? current->created_us : now_us);
}

// ObservationConflict is the refusal of a presented certificate whose (issuer, serial) another
// recorded certificate has.
Error ObservationConflict(const CertificateRecord& record) {
  return AlreadyExists("recording presented certificate " + record.sha256_thumbprint +
                       ": a different certificate with serial " + record.serial + " of " +
                       record.issuer + " is already recorded");
}

}  // namespace

SqliteRegistry::SqliteRegistry(Clock& clock, Random& random,
                               std::unique_ptr<sqlite::ReadPool> readers,
                               std::unique_ptr<sqlite::GroupCommitWriter> writer)
    : clock_(clock), random_(random), readers_(std::move(readers)), writer_(std::move(writer)) {}

SqliteRegistry::~SqliteRegistry() = default;

Result<std::unique_ptr<SqliteRegistry>> SqliteRegistry::Open(const std::string& path, Clock& clock,
                                                             Random& random) {
  return Open(path, clock, random, SqliteRegistryOptions());
}

Result<std::unique_ptr<SqliteRegistry>> SqliteRegistry::Open(const std::string& path, Clock& clock,
                                                             Random& random,
                                                             const SqliteRegistryOptions& options) {
  sqlite::ConnectionOptions connection_options;
  connection_options.busy_timeout_ms = options.busy_timeout_ms;
  if (options.read_only) {
    auto readers =
        std::make_unique<sqlite::ReadPool>(path, connection_options, options.max_readers);
    {
      DEVID_ASSIGN_OR_RETURN(sqlite::ReadPool::Lease lease, readers->Acquire());
    }
    return std::unique_ptr<SqliteRegistry>(
        new SqliteRegistry(clock, random, std::move(readers), nullptr));
  }
  DEVID_ASSIGN_OR_RETURN(Connection db, Connection::Open(path, connection_options));
  if (auto s = sqlite::ApplyMigrations(db, SqliteMigrations(), ToMicros(clock.Now())); !s) {
    return std::unexpected(s.error().WithContext("opening registry " + path));
  }
  auto readers = std::make_unique<sqlite::ReadPool>(path, connection_options, options.max_readers);
  {
    // Open one reader now, so a database readers cannot open fails here rather than later.
    DEVID_ASSIGN_OR_RETURN(sqlite::ReadPool::Lease lease, readers->Acquire());
  }
  auto writer = std::make_unique<sqlite::GroupCommitWriter>(std::move(db), options.max_batch,
                                                             options.max_defer);
  return std::unique_ptr<SqliteRegistry>(
      new SqliteRegistry(clock, random, std::move(readers), std::move(writer)));
}

Status SqliteRegistry::Writable() const {
  if (writer_ != nullptr) return Ok();
  return std::unexpected(FailedPrecondition("writing to the registry: it is open read-only"));
}

Status SqliteRegistry::SettleOwnWrites() {
  DEVID_TRY(writer_->Flush());
  RefreshPinnedSnapshot(*readers_);
  return Ok();
}

Status SqliteRegistry::RunWrite(const std::function<Status(Connection&)>& write) {
  DEVID_TRY(Writable());
  return writer_->Run(write);
}

SqliteRegistryStats SqliteRegistry::stats() const {
  if (writer_ == nullptr) return SqliteRegistryStats();
  sqlite::GroupCommitWriter::Stats s = writer_->stats();
  return SqliteRegistryStats{s.transactions, s.writes};
}

// Reads of one request.

std::unique_ptr<Registry::ReadScope> SqliteRegistry::ReadConsistently() {
  return PinReader(/*wait=*/true);
}

std::unique_ptr<Registry::ReadScope> SqliteRegistry::TryReadConsistently() {
  return PinReader(/*wait=*/false);
}

std::unique_ptr<Registry::ReadScope> SqliteRegistry::PinReader(bool wait) {
  if (pinned_reader.pool != nullptr) return nullptr;  // this thread has a scope already
  auto lease = wait ? readers_->Acquire() : readers_->TryAcquire();
  // Without a scope the reads simply go on one by one.
  if (!lease || !RunCached(**lease, "BEGIN")) return nullptr;
  pinned_reader = PinnedReader{readers_.get(), &**lease};
  return std::make_unique<SqliteReadScope>(std::move(*lease));
}

// Individual enrollments.

Result<Enrollment> SqliteRegistry::GetEnrollment(std::string_view registration_id) {
  return ReadThrough(*readers_, enrollments_, registration_id, [&](Connection& db) {
    return ReadOne<Enrollment>(db, sqlite::kSelectEnrollment, registration_id, "enrollment",
                               ReadEnrollment);
  });
}

Result<Enrollment> SqliteRegistry::PutEnrollment(const Enrollment& enrollment,
                                                 const std::optional<std::string>& if_match,
                                                 const Actor& actor) {
  DEVID_TRY(ValidateId("the registration ID", enrollment.registration_id));
  DEVID_TRY(ValidateSettings(enrollment.settings));
  const std::string& id = enrollment.registration_id;
  Enrollment stored = enrollment;
  std::string hubs = JoinHubs(stored.settings.iot_hubs);
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current,
                           ReadVersion(db, sqlite::kEnrollmentVersion, id));
    DEVID_TRY(CheckIfMatch(current, if_match, "updating", "enrollment", id));
    int64_t now_us = ToMicros(clock_.Now());
    Stamp(stored.settings, current, now_us, random_.Hex(kEtagBytes));
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertEnrollment));
    Params p(*stmt);
    p.Text(stored.registration_id);
    p.Text(stored.device_id);
    p.Text(stored.optional_device_information_json);
    BindSettings(p, stored.settings, hubs);
    row_codec::BindEnrollmentTpmPolicy(p, stored);
    DEVID_TRY(stmt->Run());
    return AppendAudit(db, now_us, actor, current ? "enrollment.update" : "enrollment.create", id);
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Status SqliteRegistry::DeleteEnrollment(std::string_view registration_id,
                                        const std::optional<std::string>& if_match,
                                        const Actor& actor) {
  auto write = [&](Connection& db) -> Status {
    return DeleteRow(db, kEnrollments, registration_id, if_match, actor, ToMicros(clock_.Now()));
  };
  return RunWrite(write);
}

Result<Page<Enrollment>> SqliteRegistry::QueryEnrollments(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  return WithReader(*readers_, [&](Connection& db) -> Result<Page<Enrollment>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kPageEnrollments));
    stmt->BindText(1, after);
    stmt->BindInt64(2, limit + 1);
    return ReadPage<Enrollment>(*stmt, limit, ReadEnrollment,
                                [](const Enrollment& e) { return e.registration_id; });
  });
}

// Enrollment groups.

Result<EnrollmentGroup> SqliteRegistry::GetEnrollmentGroup(std::string_view group_id) {
  return ReadThrough(*readers_, groups_, group_id, [&](Connection& db) {
    return ReadOne<EnrollmentGroup>(db, sqlite::kSelectGroup, group_id, "enrollment group",
                                    ReadGroup);
  });
}

Result<EnrollmentGroup> SqliteRegistry::PutEnrollmentGroup(
    const EnrollmentGroup& group, const std::optional<std::string>& if_match, const Actor& actor) {
  DEVID_TRY(ValidateId("the enrollment group ID", group.enrollment_group_id));
  DEVID_TRY(ValidateSettings(group.settings));
  const std::string& id = group.enrollment_group_id;
  EnrollmentGroup stored = group;
  std::string hubs = JoinHubs(stored.settings.iot_hubs);
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current,
                           ReadVersion(db, sqlite::kGroupVersion, id));
    DEVID_TRY(CheckIfMatch(current, if_match, "updating", "enrollment group", id));
    int64_t now_us = ToMicros(clock_.Now());
    Stamp(stored.settings, current, now_us, random_.Hex(kEtagBytes));
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertGroup));
    Params p(*stmt);
    p.Text(stored.enrollment_group_id);
    p.Text(stored.registration_id_prefix);
    BindSettings(p, stored.settings, hubs);
    DEVID_TRY(stmt->Run());
    return AppendAudit(db, now_us, actor,
                       current ? "enrollmentGroup.update" : "enrollmentGroup.create", id);
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Status SqliteRegistry::DeleteEnrollmentGroup(std::string_view group_id,
                                             const std::optional<std::string>& if_match,
                                             const Actor& actor) {
  auto write = [&](Connection& db) -> Status {
    return DeleteRow(db, kGroups, group_id, if_match, actor, ToMicros(clock_.Now()));
  };
  return RunWrite(write);
}

Result<Page<EnrollmentGroup>> SqliteRegistry::QueryEnrollmentGroups(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  return WithReader(*readers_, [&](Connection& db) -> Result<Page<EnrollmentGroup>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kPageGroups));
    stmt->BindText(1, after);
    stmt->BindInt64(2, limit + 1);
    return ReadPage<EnrollmentGroup>(
        *stmt, limit, ReadGroup, [](const EnrollmentGroup& g) { return g.enrollment_group_id; });
  });
}

Result<std::vector<EnrollmentGroup>> SqliteRegistry::FindGroupCandidates(
    std::string_view registration_id, AttestationType type) {
  return WithReader(*readers_, [&](Connection& db) -> Result<std::vector<EnrollmentGroup>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kFindGroupCandidates));
    stmt->BindText(1, registration_id);
    stmt->BindText(2, AttestationTypeName(type));
    std::vector<EnrollmentGroup> groups;
    for (;;) {
      DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      DEVID_ASSIGN_OR_RETURN(EnrollmentGroup group, ReadGroup(*stmt));
      groups.push_back(std::move(group));
    }
    return groups;
  });
}

// Registrations.

Result<Registration> SqliteRegistry::GetRegistration(std::string_view registration_id) {
  return ReadThrough(*readers_, registrations_, registration_id, [&](Connection& db) {
    return ReadOne<Registration>(db, sqlite::kSelectRegistration, registration_id, "registration",
                                 ReadRegistration);
  });
}

Result<Registration> SqliteRegistry::SaveRegistration(const Registration& registration,
                                                      const Actor& actor) {
  DEVID_TRY(ValidateId("the registration ID", registration.registration_id));
  Registration stored = registration;
  auto write = [&](Connection& db) -> Status {
    int64_t now_us = ToMicros(clock_.Now());
    stored.etag = random_.Hex(kEtagBytes);
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertRegistration));
    Params p(*stmt);
    p.Text(stored.registration_id);
    p.Text(stored.device_id);
    p.Text(stored.assigned_hub);
    p.Text(stored.status);
    p.Text(stored.substatus);
    p.Text(stored.operation_id);
    p.Text(stored.enrollment_group_id);
    p.Text(AttestationTypeName(stored.attestation_type));
    p.Text(stored.payload_json);
    p.Text(stored.response_payload_json);
    p.Int(stored.error_code);
    p.Text(stored.error_message);
    p.Text(stored.etag);
    p.Int(now_us);  // created_us, kept by the upsert when the row exists
    p.Int(now_us);
    p.Text(stored.device_key);
    p.Text(stored.tpm_storage_root_key);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::unexpected(Internal("saving registration: no row returned"));
    stored.created = FromMicros(stmt->ColumnInt64(0));
    stored.updated = FromMicros(now_us);
    stmt->Reset();
    // The registration consumes its pending challenge in the same transaction (registry.h).
    DEVID_ASSIGN_OR_RETURN(StatementRef consume, db.Prepare(sqlite::kDeleteChallenge));
    consume->BindText(1, stored.registration_id);
    DEVID_TRY(consume->Run());
    return AppendAudit(db, now_us, actor, "registration.assign", stored.registration_id);
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Status SqliteRegistry::DeleteRegistration(std::string_view registration_id,
                                          const std::optional<std::string>& if_match,
                                          const Actor& actor) {
  auto write = [&](Connection& db) -> Status {
    return DeleteRow(db, kRegistrations, registration_id, if_match, actor, ToMicros(clock_.Now()));
  };
  return RunWrite(write);
}

Result<Page<Registration>> SqliteRegistry::QueryGroupRegistrations(std::string_view group_id,
                                                                   const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  return WithReader(*readers_, [&](Connection& db) -> Result<Page<Registration>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kPageGroupRegistrations));
    stmt->BindText(1, group_id);
    stmt->BindText(2, after);
    stmt->BindInt64(3, limit + 1);
    return ReadPage<Registration>(*stmt, limit, ReadRegistration,
                                  [](const Registration& r) { return r.registration_id; });
  });
}

// Challenges.

Status SqliteRegistry::PutChallenge(const Challenge& challenge, const Actor& actor) {
  (void)actor;  // challenges are transient and not audited (registry.h)
  DEVID_TRY(ValidateId("the registration ID", challenge.registration_id));
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertChallenge));
    Params p(*stmt);
    p.Text(challenge.registration_id);
    p.Text(challenge.secret);
    p.Int(ToMicros(challenge.expires));
    p.Int(ToMicros(clock_.Now()));
    return stmt->Run();
  };
  return RunWrite(write);
}

Result<Challenge> SqliteRegistry::GetChallenge(std::string_view registration_id) {
  int64_t now_us = ToMicros(clock_.Now());
  return WithReader(*readers_, [&](Connection& db) -> Result<Challenge> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kSelectChallenge));
    stmt->BindText(1, registration_id);
    stmt->BindInt64(2, now_us);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) {
      return std::unexpected(
          NotFound("no pending challenge for \"" + std::string(registration_id) + "\""));
    }
    Challenge c;
    c.registration_id = std::string(registration_id);
    c.secret = stmt->ColumnText(0);
    c.expires = FromMicros(stmt->ColumnInt64(1));
    return c;
  });
}

// Settings.

Result<std::optional<std::string>> SqliteRegistry::GetSetting(std::string_view name) {
  return WithReader(*readers_, [&](Connection& db) -> Result<std::optional<std::string>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kSelectSetting));
    stmt->BindText(1, name);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt->ColumnText(0));
  });
}

Status SqliteRegistry::SetSetting(std::string_view name, std::string_view value,
                                  const Actor& actor) {
  DEVID_TRY(ValidateId("the setting name", name));
  auto write = [&](Connection& db) -> Status {
    int64_t now_us = ToMicros(clock_.Now());
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertSetting));
    stmt->BindText(1, name);
    stmt->BindText(2, value);
    stmt->BindInt64(3, now_us);
    DEVID_TRY(stmt->Run());
    return AppendAudit(db, now_us, actor, "setting.set", name);
  };
  return RunWrite(write);
}

Result<std::string> SqliteRegistry::SetSettingIfAbsent(std::string_view name,
                                                       std::string_view value,
                                                       const Actor& actor) {
  DEVID_TRY(ValidateId("the setting name", name));
  std::string stored;
  auto write = [&](Connection& db) -> Status {
    int64_t now_us = ToMicros(clock_.Now());
    bool inserted = false;
    {
      DEVID_ASSIGN_OR_RETURN(StatementRef insert, db.Prepare(sqlite::kInsertSettingIfAbsent));
      insert->BindText(1, name);
      insert->BindText(2, value);
      insert->BindInt64(3, now_us);
      DEVID_ASSIGN_OR_RETURN(inserted, insert->Step());
    }
    DEVID_ASSIGN_OR_RETURN(StatementRef select, db.Prepare(sqlite::kSelectSetting));
    select->BindText(1, name);
    DEVID_ASSIGN_OR_RETURN(bool row, select->Step());
    if (!row) return std::unexpected(Internal("setting " + std::string(name) + " vanished"));
    stored = select->ColumnText(0);
    return inserted ? AppendAudit(db, now_us, actor, "setting.set", name) : Ok();
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

// Certificate inventory.

Status SqliteRegistry::RecordCertificate(const CertificateRecord& record,
                                         std::string_view audit_action, const Actor& actor) {
  DEVID_TRY(store_codec::ValidateCertificate(record));
  DEVID_TRY(store_codec::ValidateIssueAction(audit_action));
  auto write = [&](Connection& db) -> Status {
    CertificateRecord stored = store_codec::IssuedRecord(record, clock_.Now());
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kInsertCertificate));
    Params p(*stmt);
    row_codec::BindCertificate(p, stored);
    // The table's UNIQUE constraints decide, not a read first: the writer is the only one here,
    // but on a shared PostgreSQL only the constraint is atomic across nodes.
    if (auto inserted = stmt->Run(); !inserted) {
      Error e = inserted.error();
      if (e.code() != ErrorCode::kAlreadyExists) return std::unexpected(e);
      return std::unexpected(AlreadyExists("recording certificate " + record.sha256_thumbprint +
                                           " (serial " + record.serial + " of " + record.issuer +
                                           "): its thumbprint or its issuer and serial are already "
                                           "recorded"));
    }
    return AppendAudit(db, ToMicros(stored.first_seen), actor, audit_action, record.serial);
  };
  return RunWrite(write);
}

Status SqliteRegistry::ObserveCertificate(const CertificateRecord& record) {
  DEVID_TRY(store_codec::ValidateCertificate(record));
  DEVID_TRY(Writable());
  // The conflict the insert would hit is looked for now, so that the caller hears of it; the
  // write itself is a sighting, not worth a sync of its own, and joins the next transaction.
  auto recorded = WithReader(*readers_, [&](Connection& db) -> Result<std::string> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kSelectCertificateByIssuerSerial));
    stmt->BindText(1, record.issuer);
    stmt->BindText(2, record.serial);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    return row ? stmt->ColumnText(0) : std::string();
  });
  if (!recorded) return std::unexpected(recorded.error());
  if (!recorded->empty() && *recorded != record.sha256_thumbprint) {
    return std::unexpected(ObservationConflict(record));
  }
  CertificateRecord stored = store_codec::ObservedRecord(record, clock_.Now());
  auto write = [stored = std::move(stored)](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kObserveCertificate));
    Params p(*stmt);
    row_codec::BindCertificate(p, stored);
    if (auto observed = stmt->Run(); !observed) {
      Error e = observed.error();
      if (e.code() != ErrorCode::kAlreadyExists) return std::unexpected(e);
      return std::unexpected(ObservationConflict(stored));
    }
    return Ok();
  };
  auto settled = [this, thumbprint = record.sha256_thumbprint](const Status& status) {
    if (!status) {
      spdlog::warn("recording observed certificate {} failed: {}", thumbprint,
                   status.error().message());
    }
    std::lock_guard lock(observations_mu_);
    unsettled_observations_.erase(unsettled_observations_.find(thumbprint));
  };
  {
    std::lock_guard lock(observations_mu_);
    unsettled_observations_.insert(record.sha256_thumbprint);
  }
  writer_->Defer(std::move(write), std::move(settled));
  return Ok();
}

bool SqliteRegistry::MustFlush(const CertificateFilter& filter) const {
  // An observation neither records a revoked certificate nor revokes one: a query for revoked
  // certificates only (every X.509 authentication's revocation check) cannot miss one.
  if (filter.revoked == true) return false;
  std::lock_guard lock(observations_mu_);
  // A query for one thumbprint (the inventory check of EST re-enrollment and of token requests)
  // waits only for that certificate's observation, not for other devices'.
  if (filter.sha256_thumbprint) return unsettled_observations_.contains(*filter.sha256_thumbprint);
  return !unsettled_observations_.empty();
}

Result<Page<CertificateRecord>> SqliteRegistry::QueryCertificates(const CertificateFilter& filter,
                                                                  const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(certificate_sql::Cursor after,
                         certificate_sql::DecodeCursor(page.continuation));
  int limit = ClampPageSize(page.max_items);
  // Observations not yet committed are this registry's own writes: reads see them.
  if (writer_ != nullptr && MustFlush(filter)) DEVID_TRY(SettleOwnWrites());
  auto read = [&](Connection& db) -> Result<Page<CertificateRecord>> {
    certificate_sql::Query query =
        certificate_sql::Page(filter, after, limit + 1, certificate_sql::Dialect::kSqlite);
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(query.sql));
    BindValues(*stmt, query.values);
    return ReadPage<CertificateRecord>(*stmt, limit, ReadCertificate, certificate_sql::CursorKey);
  };
  // One thumbprint (the primary key) selects one certificate or none, whatever the page size:
  // every certificate-authenticated request's inventory check.
  bool by_thumbprint = filter.sha256_thumbprint && page.continuation.empty() &&
                       filter == CertificateFilter{.sha256_thumbprint = filter.sha256_thumbprint};
  if (by_thumbprint) {
    return ReadThrough(*readers_, certificates_, *filter.sha256_thumbprint, read);
  }
  return WithReader(*readers_, read);
}

Result<std::vector<CertificateRecord>> SqliteRegistry::RevokeCertificates(
    const CertificateFilter& filter, int reason, const Actor& actor) {
  if (certificate_sql::IsEmpty(filter)) {
    return std::unexpected(InvalidArgument(
        "revoking certificates: the filter is empty; name the certificates to revoke"));
  }
  DEVID_TRY(store_codec::ValidateRevocationReason(reason));
  std::vector<CertificateRecord> revoked;
  auto write = [&](Connection& db) -> Status {
    int64_t now_us = ToMicros(clock_.Now());
    certificate_sql::Query update =
        certificate_sql::Revoke(filter, reason, now_us, certificate_sql::Dialect::kSqlite);
    {
      DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(update.sql));
      BindValues(*stmt, update.values);
      for (;;) {
        DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) break;
        DEVID_ASSIGN_OR_RETURN(CertificateRecord record, ReadCertificate(*stmt));
        revoked.push_back(std::move(record));
      }
    }
    if (revoked.empty()) {
      certificate_sql::Query any =
          certificate_sql::AnyIssued(filter, certificate_sql::Dialect::kSqlite);
      DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(any.sql));
      BindValues(*stmt, any.values);
      DEVID_ASSIGN_OR_RETURN(bool found, stmt->Step());
      if (!found) {
        return std::unexpected(NotFound("revoking certificates: no issued certificate matches " +
                                        certificate_sql::Describe(filter)));
      }
      return Ok();  // all already revoked: nothing changes, nothing to audit
    }
    std::sort(revoked.begin(), revoked.end(), ByExpiry);
    {
      DEVID_ASSIGN_OR_RETURN(StatementRef bump, db.Prepare(sqlite::kBumpRevocationVersion));
      DEVID_TRY(bump->Run());
    }
    std::string outcome = store_codec::RevocationOutcome(reason);
    for (const CertificateRecord& record : revoked) {
      DEVID_TRY(AppendAudit(db, now_us, actor, kAuditCertificateRevoke, record.serial, outcome));
    }
    return Ok();
  };
  DEVID_TRY(RunWrite(write));
  return revoked;
}

Result<int64_t> SqliteRegistry::RevocationVersion() {
  return WithReader(*readers_, [&](Connection& db) -> Result<int64_t> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kSelectRevocationVersion));
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    return row ? stmt->ColumnInt64(0) : 0;
  });
}

// CA certificates.

Result<CaCertificate> SqliteRegistry::GetCaCertificate(std::string_view name) {
  return WithReader(*readers_, [&](Connection& db) {
    return ReadOne<CaCertificate>(db, sqlite::kSelectCaCertificate, name, "CA certificate",
                                  ReadCaCertificate);
  });
}

Result<CaCertificate> SqliteRegistry::PutCaCertificate(const CaCertificate& certificate,
                                                       const std::optional<std::string>& if_match,
                                                       const Actor& actor) {
  DEVID_TRY(ca_certificate_store::ValidateUpload(certificate));
  CaCertificate stored = ca_certificate_store::Unverified(certificate);
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current,
                           ReadVersion(db, sqlite::kCaCertificateVersion, stored.name));
    DEVID_TRY(CheckIfMatch(current, if_match, "updating", "CA certificate", stored.name));
    int64_t now_us = ToMicros(clock_.Now());
    stored.etag = random_.Hex(kEtagBytes);
    stored.created = FromMicros(current ? current->created_us : now_us);
    stored.updated = FromMicros(now_us);
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kUpsertCaCertificate));
    Params p(*stmt);
    row_codec::BindCaCertificate(p, stored);
    DEVID_TRY(stmt->Run());
    return AppendAudit(db, now_us, actor,
                       current ? kAuditCaCertificateUpdate : kAuditCaCertificateCreate,
                       stored.name);
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Status SqliteRegistry::DeleteCaCertificate(std::string_view name,
                                           const std::optional<std::string>& if_match,
                                           const Actor& actor) {
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current,
                           ReadVersion(db, sqlite::kCaCertificateVersion, name));
    if (!current) return std::unexpected(NotFound(NotFoundMessage("CA certificate", name)));
    DEVID_TRY(CheckIfMatch(current, if_match, "deleting", "CA certificate", name));
    {
      DEVID_ASSIGN_OR_RETURN(StatementRef referrer, db.Prepare(sqlite::kCaCertificateReferrer));
      referrer->BindText(1, name);
      DEVID_ASSIGN_OR_RETURN(bool referenced, referrer->Step());
      if (referenced) {
        return std::unexpected(FailedPrecondition(
            ca_certificate_store::ReferencedMessage(name, referrer->ColumnText(0))));
      }
    }
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kDeleteCaCertificate));
    stmt->BindText(1, name);
    DEVID_TRY(stmt->Run());
    return AppendAudit(db, ToMicros(clock_.Now()), actor, kAuditCaCertificateDelete, name);
  };
  return RunWrite(write);
}

Result<Page<CaCertificate>> SqliteRegistry::QueryCaCertificates(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  return WithReader(*readers_, [&](Connection& db) -> Result<Page<CaCertificate>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kPageCaCertificates));
    stmt->BindText(1, after);
    stmt->BindInt64(2, limit + 1);
    return ReadPage<CaCertificate>(*stmt, limit, ReadCaCertificate,
                                   [](const CaCertificate& c) { return c.name; });
  });
}

Result<CaCertificate> SqliteRegistry::SetCaVerificationCode(
    std::string_view name, std::string_view code_hash,
    std::chrono::system_clock::time_point expires, const std::optional<std::string>& if_match,
    const Actor& actor) {
  if (code_hash.empty()) {
    return std::unexpected(InvalidArgument("the verification code hash is empty"));
  }
  CaCertificate stored;
  auto write = [&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> current,
                           ReadVersion(db, sqlite::kCaCertificateVersion, name));
    if (!current) return std::unexpected(NotFound(NotFoundMessage("CA certificate", name)));
    DEVID_TRY(CheckIfMatch(current, if_match, "generating a code for", "CA certificate", name));
    int64_t now_us = ToMicros(clock_.Now());
    std::string etag = random_.Hex(kEtagBytes);
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kSetCaVerificationCode));
    Params p(*stmt);
    p.Text(name);
    p.Text(code_hash);
    p.Int(ToMicros(expires));
    p.Text(etag);
    p.Int(now_us);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::unexpected(Internal("CA certificate " + std::string(name) + " vanished"));
    DEVID_ASSIGN_OR_RETURN(stored, ReadCaCertificate(*stmt));
    stmt->Reset();
    return AppendAudit(db, now_us, actor, kAuditCaCertificateCode, name);
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Result<CaCertificate> SqliteRegistry::VerifyCaCertificate(std::string_view name,
                                                          std::string_view sha256_thumbprint,
                                                          std::string_view code_hash,
                                                          const Actor& actor) {
  CaCertificate stored;
  auto write = [&](Connection& db) -> Status {
    auto now = clock_.Now();
    int64_t now_us = ToMicros(now);
    std::string etag = random_.Hex(kEtagBytes);
    {
      DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kConsumeCaVerificationCode));
      Params p(*stmt);
      p.Text(name);
      p.Text(sha256_thumbprint);
      p.Text(code_hash);
      p.Int(now_us);
      p.Text(etag);
      p.Int(now_us);
      DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (row) {
        DEVID_ASSIGN_OR_RETURN(stored, ReadCaCertificate(*stmt));
        stmt->Reset();
        return AppendAudit(db, now_us, actor, kAuditCaCertificateVerify, name);
      }
    }
    DEVID_ASSIGN_OR_RETURN(CaCertificate current,
                           ReadOne<CaCertificate>(db, sqlite::kSelectCaCertificate, name,
                                                  "CA certificate", ReadCaCertificate));
    return std::unexpected(
        ca_certificate_store::VerificationRefusal(current, sha256_thumbprint, code_hash, now));
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

// Audit.

// Server-signed commands.

Result<DeviceCommand> SqliteRegistry::AddDeviceCommand(const DeviceCommand& command,
                                                       const Actor& actor) {
  DEVID_TRY(store_codec::ValidateDeviceCommand(command, clock_.Now()));
  DeviceCommand stored = command;
  auto write = [&](Connection& db) -> Status {
    int64_t now_us = ToMicros(clock_.Now());
    DEVID_ASSIGN_OR_RETURN(std::optional<RowVersion> registration,
                           ReadVersion(db, sqlite::kRegistrationVersion, command.device_id));
    if (!registration) {
      return std::unexpected(NotFound(NotFoundMessage("registration", command.device_id)));
    }
    // One writer: MAX + 1 cannot race here; the primary key still guards the rule.
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kInsertDeviceCommand));
    Params p(*stmt);
    p.Text(command.device_id);
    p.Int(now_us);
    p.Int(ToMicros(command.expires));
    p.Text(command.body_sha256);
    DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::unexpected(Internal("storing a command: no sequence returned"));
    stored.sequence = stmt->ColumnInt64(0);
    stored.issued = FromMicros(now_us);
    return AppendAudit(db, now_us, actor, kAuditCommandSign, command.device_id,
                       store_codec::CommandOutcome(stored.sequence));
  };
  DEVID_TRY(RunWrite(write));
  return stored;
}

Status SqliteRegistry::RecordAudit(std::string_view action, std::string_view object,
                                   std::string_view outcome, const Actor& actor) {
  // The event changes nothing else in the store, so its record need not cost the caller a
  // transaction: it joins the next one, within max_defer (docs/tokens.md says what a crash may
  // lose). Its time is taken now, and writes commit in the order they are queued.
  DEVID_TRY(Writable());
  unsettled_audits_.fetch_add(1);
  writer_->Defer(
      [this, time_us = ToMicros(clock_.Now()), action = std::string(action),
       object = std::string(object), outcome = std::string(outcome),
       actor](Connection& db) -> Status {
        return AppendAudit(db, time_us, actor, action, object, outcome);
      },
      [this, action = std::string(action), object = std::string(object)](const Status& status) {
        unsettled_audits_.fetch_sub(1);
        if (!status) {
          spdlog::error("the audit record {} of {} was not written: {}", action, object,
                        status.error().message());
        }
      });
  return Ok();
}

Result<std::vector<AuditRecord>> SqliteRegistry::ListAudit(int64_t after, int limit) {
  if (limit <= 0) return std::vector<AuditRecord>();
  // The log this process reads includes the records it queued.
  if (unsettled_audits_.load() > 0) DEVID_TRY(SettleOwnWrites());
  return WithReader(*readers_, [&](Connection& db) -> Result<std::vector<AuditRecord>> {
    DEVID_ASSIGN_OR_RETURN(StatementRef stmt, db.Prepare(sqlite::kPageAudit));
    stmt->BindInt64(1, after);
    stmt->BindInt64(2, std::min(limit, kMaxPageItems));
    std::vector<AuditRecord> records;
    for (;;) {
      DEVID_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      Columns c(*stmt);
      AuditRecord r;
      r.sequence = c.Int();
      r.time = c.Time();
      r.actor = c.Text();
      r.action = c.Text();
      r.object = c.Text();
      r.outcome = c.Text();
      r.chain_hash = c.Text();
      records.push_back(std::move(r));
    }
    return records;
  });
}

}  // namespace devid::registry
