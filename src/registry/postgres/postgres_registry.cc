#include "registry/row_codec.h"
#include "registry/store_codec.h"
#include "registry/postgres/postgres_registry.h"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <utility>
#include <variant>

#include "base/hex.h"
#include "registry/audit_chain.h"
#include "registry/ca_certificate_row.h"
#include "registry/ca_certificate_store.h"
#include "registry/certificate_sql.h"
#include "registry/migrations/postgres_migrations.h"
#include "registry/postgres/ca_certificate_queries.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/migrate.h"
#include "registry/postgres/queries.h"

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

using postgres::Connection;
using postgres::Rows;

constexpr int kMaxAttempts = 3;

// Params collects a statement's text parameters in order ($1, $2, ...). Numbers are formatted
// into owned strings; text values are referred to and must outlive the statement's run.
class Params {
 public:
  void Text(std::string_view value) { values_.push_back(value); }
  void Int(int64_t value) {
    owned_.push_back(std::make_unique<std::string>(std::to_string(value)));
    values_.push_back(*owned_.back());
  }
  // Blob sends bytes as bytea's hex text form (PostgreSQL §8.4.1), which a text parameter can
  // carry whatever the bytes.
  void Blob(std::string_view value) {
    owned_.push_back(std::make_unique<std::string>("\\x" + HexEncode(value)));
    values_.push_back(*owned_.back());
  }
  const std::vector<std::string_view>& values() const { return values_; }

 private:
  std::vector<std::unique_ptr<std::string>> owned_;  // stable addresses for values_
  std::vector<std::string_view> values_;
};

// Columns reads one row's columns in order, starting at the first.
class Columns {
 public:
  Columns(const Rows& rows, int row) : rows_(rows), row_(row) {}
  std::string Text() { return rows_.Text(row_, next_++); }
  int64_t Int() { return rows_.Int(row_, next_++); }
  bool Bool() { return Int() != 0; }
  std::chrono::system_clock::time_point Time() { return FromMicros(Int()); }
  // Blob reads a bytea column, which arrives in its hex text form ("\x..."), the server's
  // default bytea_output.
  Result<std::string> Blob() {
    std::string text = Text();
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') {
      return std::unexpected(
          Internal("reading the registry: a bytea value is not in hex form (bytea_output)"));
    }
    return store_codec::DecodeHexBytes(std::string_view(text).substr(2));
  }

 private:
  const Rows& rows_;
  int row_;
  int next_ = 0;
};

using row_codec::BindSettings;

Result<Enrollment> ReadEnrollment(const Rows& rows, int row) {
  Columns c(rows, row);
  return row_codec::ReadEnrollment(c);
}

Result<EnrollmentGroup> ReadGroup(const Rows& rows, int row) {
  Columns c(rows, row);
  return row_codec::ReadGroup(c);
}

Result<Registration> ReadRegistration(const Rows& rows, int row) {
  Columns c(rows, row);
  return row_codec::ReadRegistration(c);
}

Result<CertificateRecord> ReadCertificate(const Rows& rows, int row) {
  Columns c(rows, row);
  return row_codec::ReadCertificate(c);
}

Result<CaCertificate> ReadCaCertificate(const Rows& rows, int row) {
  Columns c(rows, row);
  return row_codec::ReadCaCertificate(c);
}

// RunQuery runs a built query (certificate_sql.h), its integers formatted as text.
Result<Rows> RunQuery(Connection& db, const certificate_sql::Query& query) {
  std::vector<std::string> owned;
  owned.reserve(query.values.size());
  for (const certificate_sql::Value& value : query.values) {
    if (const auto* text = std::get_if<std::string>(&value)) {
      owned.push_back(*text);
    } else {
      owned.push_back(std::to_string(std::get<int64_t>(value)));
    }
  }
  std::vector<std::string_view> params(owned.begin(), owned.end());
  return db.Run(query.sql, params);
}

// ByExpiry orders records as QueryCertificates does: not_after, then thumbprint.
bool ByExpiry(const CertificateRecord& a, const CertificateRecord& b) {
  return std::tie(a.not_after, a.sha256_thumbprint) < std::tie(b.not_after, b.sha256_thumbprint);
}

// ReadOne runs a query by ID expected to return at most one row and converts it with read_row.
template <typename T, typename ReadRow>
Result<T> ReadOne(Connection& db, std::string_view sql, std::string_view id, std::string_view noun,
                  ReadRow read_row) {
  DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(sql, {id}));
  if (rows.empty()) return std::unexpected(NotFound(NotFoundMessage(noun, id)));
  return read_row(rows, 0);
}

// ReadPage converts the rows of a query bound to fetch one more than limit, turning the extra
// row into a continuation.
template <typename T, typename ReadRow, typename KeyOf>
Result<Page<T>> ReadPage(const Rows& rows, int limit, ReadRow read_row, KeyOf key_of) {
  Page<T> page;
  for (int i = 0; i < rows.size(); ++i) {
    if (i == limit) {
      page.continuation = EncodeContinuation(key_of(page.items.back()));
      break;
    }
    DEVID_ASSIGN_OR_RETURN(T item, read_row(rows, i));
    page.items.push_back(std::move(item));
  }
  return page;
}

// CheckIfMatch applies If-Match to the row a write would change, whose etag the caller read
// under a row lock (RFC 9110 §13.1.1: "*" matches any current row).
Status CheckIfMatch(const Rows& locked, const std::string& if_match, std::string_view action,
                    std::string_view noun, std::string_view id) {
  if (locked.empty()) return std::unexpected(NotFound(NotFoundMessage(noun, id)));
  if (if_match != "*" && if_match != locked.Text(0, 0)) {
    return std::unexpected(FailedPrecondition(std::string(action) + " " + std::string(noun) +
                                              " \"" + std::string(id) + "\": etag mismatch"));
  }
  return Ok();
}

// AppendAudit takes the audit lock, then reads the last record's chain hash in a new statement
// (which sees every record committed before the lock was granted) and appends this record chained
// to it; the lock is held until commit, so no other node appends in between.
Status AppendAudit(Connection& db, int64_t time_us, const Actor& actor, std::string_view action,
                   std::string_view object, std::string_view outcome = "success") {
  std::string lock_key = std::to_string(PostgresRegistry::kAuditLockKey);
  DEVID_TRY(db.Run(postgres::kLockAudit, {lock_key}));
  DEVID_ASSIGN_OR_RETURN(Rows last, db.Run(postgres::kLastAuditHash, {}));
  std::string previous = last.empty() ? "" : last.Text(0, 0);
  AuditRecord record{.time = FromMicros(time_us),
                     .actor = actor.name,
                     .action = std::string(action),
                     .object = std::string(object),
                     .outcome = std::string(outcome)};
  std::string chain_hash = AuditChainHash(previous, record);
  Params p;
  p.Int(time_us);
  p.Text(actor.name);
  p.Text(action);
  p.Text(object);
  p.Text(outcome);
  p.Text(chain_hash);
  DEVID_TRY(db.Run(postgres::kInsertAudit, p.values()));
  return Ok();
}

// Table names the SQL and words for one kind of row deleted by DeleteRow.
struct Table {
  std::string_view noun;          // in messages
  std::string_view audit_prefix;  // before ".delete" in the audit log
  std::string_view lock_sql;
  std::string_view delete_sql;
};

constexpr Table kEnrollments{"enrollment", "enrollment", postgres::kLockEnrollment,
                             postgres::kDeleteEnrollment};
constexpr Table kGroups{"enrollment group", "enrollmentGroup", postgres::kLockGroup,
                        postgres::kDeleteGroup};
constexpr Table kRegistrations{"registration", "registration", postgres::kLockRegistration,
                               postgres::kDeleteRegistration};

Status DeleteRow(Connection& db, const Table& table, std::string_view id,
                 const std::optional<std::string>& if_match, const Actor& actor, int64_t now_us) {
  DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(table.lock_sql, {id}));
  if (locked.empty()) return std::unexpected(NotFound(NotFoundMessage(table.noun, id)));
  if (if_match) DEVID_TRY(CheckIfMatch(locked, *if_match, "deleting", table.noun, id));
  DEVID_TRY(db.Run(table.delete_sql, {id}));
  return AppendAudit(db, now_us, actor, std::string(table.audit_prefix) + ".delete", id);
}

}  // namespace

PostgresRegistry::PostgresRegistry(Clock& clock, Random& random,
                                   std::unique_ptr<postgres::Pool> pool)
    : clock_(clock), random_(random), pool_(std::move(pool)) {}

PostgresRegistry::~PostgresRegistry() = default;

Result<std::unique_ptr<PostgresRegistry>> PostgresRegistry::Open(const std::string& conninfo,
                                                                 Clock& clock, Random& random) {
  return Open(conninfo, clock, random, PostgresRegistryOptions());
}

Result<std::unique_ptr<PostgresRegistry>> PostgresRegistry::Open(
    const std::string& conninfo, Clock& clock, Random& random,
    const PostgresRegistryOptions& options) {
  {
    // Migrations run on their own connection, closed afterwards, so the session advisory lock
    // cannot leak into the pool.
    DEVID_ASSIGN_OR_RETURN(Connection db, Connection::Open(conninfo));
    if (auto s = postgres::ApplyMigrations(db, PostgresMigrations(), ToMicros(clock.Now())); !s) {
      return std::unexpected(s.error().WithContext("opening the PostgreSQL registry"));
    }
  }
  auto pool =
      std::make_unique<postgres::Pool>(conninfo, options.max_connections, options.connection_wait);
  return std::unique_ptr<PostgresRegistry>(new PostgresRegistry(clock, random, std::move(pool)));
}

int64_t PostgresRegistry::NowMicros() {
  std::lock_guard lock(stamp_mu_);
  return ToMicros(clock_.Now());
}

std::pair<int64_t, std::string> PostgresRegistry::Stamp() {
  std::lock_guard lock(stamp_mu_);
  return {ToMicros(clock_.Now()), random_.Hex(kEtagBytes)};
}

template <typename T, typename Fn>
Result<T> PostgresRegistry::Read(Fn fn) {
  for (int attempt = 1;; ++attempt) {
    DEVID_ASSIGN_OR_RETURN(postgres::Pool::Lease lease, pool_->Acquire());
    Result<T> result = fn(*lease);
    // A pooled connection may have broken while idle (the server restarted, a proxy timed it
    // out); a read is safe to repeat on a fresh one.
    if (result || lease->healthy() || attempt == 2) return result;
    pool_->DropIdle();
  }
}

Status PostgresRegistry::Write(const std::function<Status(Connection&)>& fn) {
  for (int attempt = 1;; ++attempt) {
    DEVID_ASSIGN_OR_RETURN(postgres::Pool::Lease lease, pool_->Acquire());
    Connection& db = *lease;
    Status begun = db.Exec("BEGIN");
    if (!begun) {
      if (!db.healthy() && attempt < kMaxAttempts) {
        pool_->DropIdle();
        continue;  // nothing was sent: try afresh
      }
      return begun;
    }
    Status done = fn(db);
    if (done) {
      done = db.Exec("COMMIT");
      if (!done && !db.healthy()) {
        return std::unexpected(Unavailable(
            "committing to PostgreSQL: the connection broke, so whether the write took effect "
            "is unknown: " +
            done.error().message()));
      }
      if (done) return Ok();
    }
    if (db.healthy() && db.in_transaction()) (void)db.Exec("ROLLBACK");
    // Serialization failures and deadlocks undo the whole transaction, which may then be run
    // again (PostgreSQL §13.4); anything else is the caller's answer.
    if (done.error().code() != ErrorCode::kAborted || attempt == kMaxAttempts) return done;
  }
}

// Individual enrollments.

Result<Enrollment> PostgresRegistry::GetEnrollment(std::string_view registration_id) {
  return Read<Enrollment>([&](Connection& db) {
    return ReadOne<Enrollment>(db, postgres::kSelectEnrollment, registration_id, "enrollment",
                               ReadEnrollment);
  });
}

Result<Enrollment> PostgresRegistry::PutEnrollment(const Enrollment& enrollment,
                                                   const std::optional<std::string>& if_match,
                                                   const Actor& actor) {
  DEVID_TRY(ValidateId("the registration ID", enrollment.registration_id));
  DEVID_TRY(ValidateSettings(enrollment.settings));
  const std::string& id = enrollment.registration_id;
  Enrollment stored = enrollment;
  std::string hubs = JoinHubs(stored.settings.iot_hubs);
  DEVID_TRY(Write([&](Connection& db) -> Status {
    if (if_match) {
      DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(postgres::kLockEnrollment, {id}));
      DEVID_TRY(CheckIfMatch(locked, *if_match, "updating", "enrollment", id));
    }
    auto [now_us, etag] = Stamp();
    stored.settings.etag = std::move(etag);
    stored.settings.created = stored.settings.updated = FromMicros(now_us);
    Params p;
    p.Text(stored.registration_id);
    p.Text(stored.device_id);
    p.Text(stored.optional_device_information_json);
    BindSettings(p, stored.settings, hubs);
    row_codec::BindEnrollmentTpmPolicy(p, stored);
    DEVID_ASSIGN_OR_RETURN(Rows upserted, db.Run(postgres::kUpsertEnrollment, p.values()));
    stored.settings.created = FromMicros(upserted.Int(0, 0));
    bool created = upserted.Bool(0, 1);
    return AppendAudit(db, now_us, actor, created ? "enrollment.create" : "enrollment.update", id);
  }));
  return stored;
}

Status PostgresRegistry::DeleteEnrollment(std::string_view registration_id,
                                          const std::optional<std::string>& if_match,
                                          const Actor& actor) {
  return Write([&](Connection& db) -> Status {
    return DeleteRow(db, kEnrollments, registration_id, if_match, actor, NowMicros());
  });
}

Result<Page<Enrollment>> PostgresRegistry::QueryEnrollments(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  std::string fetch = std::to_string(limit + 1);
  return Read<Page<Enrollment>>([&](Connection& db) -> Result<Page<Enrollment>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kPageEnrollments, {after, fetch}));
    return ReadPage<Enrollment>(rows, limit, ReadEnrollment,
                                [](const Enrollment& e) { return e.registration_id; });
  });
}

// Enrollment groups.

Result<EnrollmentGroup> PostgresRegistry::GetEnrollmentGroup(std::string_view group_id) {
  return Read<EnrollmentGroup>([&](Connection& db) {
    return ReadOne<EnrollmentGroup>(db, postgres::kSelectGroup, group_id, "enrollment group",
                                    ReadGroup);
  });
}

Result<EnrollmentGroup> PostgresRegistry::PutEnrollmentGroup(
    const EnrollmentGroup& group, const std::optional<std::string>& if_match, const Actor& actor) {
  DEVID_TRY(ValidateId("the enrollment group ID", group.enrollment_group_id));
  DEVID_TRY(ValidateSettings(group.settings));
  const std::string& id = group.enrollment_group_id;
  EnrollmentGroup stored = group;
  std::string hubs = JoinHubs(stored.settings.iot_hubs);
  DEVID_TRY(Write([&](Connection& db) -> Status {
    if (if_match) {
      DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(postgres::kLockGroup, {id}));
      DEVID_TRY(CheckIfMatch(locked, *if_match, "updating", "enrollment group", id));
    }
    auto [now_us, etag] = Stamp();
    stored.settings.etag = std::move(etag);
    stored.settings.created = stored.settings.updated = FromMicros(now_us);
    Params p;
    p.Text(stored.enrollment_group_id);
    p.Text(stored.registration_id_prefix);
    BindSettings(p, stored.settings, hubs);
    DEVID_ASSIGN_OR_RETURN(Rows upserted, db.Run(postgres::kUpsertGroup, p.values()));
    stored.settings.created = FromMicros(upserted.Int(0, 0));
    bool created = upserted.Bool(0, 1);
    return AppendAudit(db, now_us, actor,
                       created ? "enrollmentGroup.create" : "enrollmentGroup.update", id);
  }));
  return stored;
}

Status PostgresRegistry::DeleteEnrollmentGroup(std::string_view group_id,
                                               const std::optional<std::string>& if_match,
                                               const Actor& actor) {
  return Write([&](Connection& db) -> Status {
    return DeleteRow(db, kGroups, group_id, if_match, actor, NowMicros());
  });
}

Result<Page<EnrollmentGroup>> PostgresRegistry::QueryEnrollmentGroups(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  std::string fetch = std::to_string(limit + 1);
  return Read<Page<EnrollmentGroup>>([&](Connection& db) -> Result<Page<EnrollmentGroup>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kPageGroups, {after, fetch}));
    return ReadPage<EnrollmentGroup>(
        rows, limit, ReadGroup, [](const EnrollmentGroup& g) { return g.enrollment_group_id; });
  });
}

Result<std::vector<EnrollmentGroup>> PostgresRegistry::FindGroupCandidates(
    std::string_view registration_id, AttestationType type) {
  return Read<std::vector<EnrollmentGroup>>(
      [&](Connection& db) -> Result<std::vector<EnrollmentGroup>> {
        DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kFindGroupCandidates,
                                                 {registration_id, AttestationTypeName(type)}));
        std::vector<EnrollmentGroup> groups;
        for (int i = 0; i < rows.size(); ++i) {
          DEVID_ASSIGN_OR_RETURN(EnrollmentGroup group, ReadGroup(rows, i));
          groups.push_back(std::move(group));
        }
        return groups;
      });
}

// Registrations.

Result<Registration> PostgresRegistry::GetRegistration(std::string_view registration_id) {
  return Read<Registration>([&](Connection& db) {
    return ReadOne<Registration>(db, postgres::kSelectRegistration, registration_id, "registration",
                                 ReadRegistration);
  });
}

Result<Registration> PostgresRegistry::SaveRegistration(const Registration& registration,
                                                        const Actor& actor) {
  DEVID_TRY(ValidateId("the registration ID", registration.registration_id));
  Registration stored = registration;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    auto [now_us, etag] = Stamp();
    stored.etag = std::move(etag);
    Params p;
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
    DEVID_ASSIGN_OR_RETURN(Rows upserted, db.Run(postgres::kUpsertRegistration, p.values()));
    stored.created = FromMicros(upserted.Int(0, 0));
    stored.updated = FromMicros(now_us);
    // The registration consumes its pending challenge in the same transaction (registry.h), so
    // of two nodes answering the same challenge at once, the second finds it gone.
    DEVID_TRY(db.Run(postgres::kDeleteChallenge, {stored.registration_id}));
    return AppendAudit(db, now_us, actor, "registration.assign", stored.registration_id);
  }));
  return stored;
}

Status PostgresRegistry::DeleteRegistration(std::string_view registration_id,
                                            const std::optional<std::string>& if_match,
                                            const Actor& actor) {
  return Write([&](Connection& db) -> Status {
    return DeleteRow(db, kRegistrations, registration_id, if_match, actor, NowMicros());
  });
}

Result<Page<Registration>> PostgresRegistry::QueryGroupRegistrations(std::string_view group_id,
                                                                     const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  std::string fetch = std::to_string(limit + 1);
  return Read<Page<Registration>>([&](Connection& db) -> Result<Page<Registration>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows,
                           db.Run(postgres::kPageGroupRegistrations, {group_id, after, fetch}));
    return ReadPage<Registration>(rows, limit, ReadRegistration,
                                  [](const Registration& r) { return r.registration_id; });
  });
}

// Challenges.

Status PostgresRegistry::PutChallenge(const Challenge& challenge, const Actor& actor) {
  (void)actor;  // challenges are transient and not audited (registry.h)
  DEVID_TRY(ValidateId("the registration ID", challenge.registration_id));
  return Write([&](Connection& db) -> Status {
    Params p;
    p.Text(challenge.registration_id);
    p.Text(challenge.secret);
    p.Int(ToMicros(challenge.expires));
    p.Int(NowMicros());
    DEVID_TRY(db.Run(postgres::kUpsertChallenge, p.values()));
    return Ok();
  });
}

Result<Challenge> PostgresRegistry::GetChallenge(std::string_view registration_id) {
  std::string now = std::to_string(NowMicros());
  return Read<Challenge>([&](Connection& db) -> Result<Challenge> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kSelectChallenge, {registration_id, now}));
    if (rows.empty()) {
      return std::unexpected(
          NotFound("no pending challenge for \"" + std::string(registration_id) + "\""));
    }
    Challenge c;
    c.registration_id = std::string(registration_id);
    c.secret = rows.Text(0, 0);
    c.expires = FromMicros(rows.Int(0, 1));
    return c;
  });
}

// Settings.

Result<std::optional<std::string>> PostgresRegistry::GetSetting(std::string_view name) {
  return Read<std::optional<std::string>>(
      [&](Connection& db) -> Result<std::optional<std::string>> {
        DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kSelectSetting, {name}));
        if (rows.empty()) return std::optional<std::string>();
        return std::optional<std::string>(rows.Text(0, 0));
      });
}

Status PostgresRegistry::SetSetting(std::string_view name, std::string_view value,
                                    const Actor& actor) {
  DEVID_TRY(ValidateId("the setting name", name));
  return Write([&](Connection& db) -> Status {
    int64_t now_us = NowMicros();
    Params p;
    p.Text(name);
    p.Text(value);
    p.Int(now_us);
    DEVID_TRY(db.Run(postgres::kUpsertSetting, p.values()));
    return AppendAudit(db, now_us, actor, "setting.set", name);
  });
}

Result<std::string> PostgresRegistry::SetSettingIfAbsent(std::string_view name,
                                                         std::string_view value,
                                                         const Actor& actor) {
  DEVID_TRY(ValidateId("the setting name", name));
  std::string stored;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    int64_t now_us = NowMicros();
    Params p;
    p.Text(name);
    p.Text(value);
    p.Int(now_us);
    DEVID_ASSIGN_OR_RETURN(Rows inserted, db.Run(postgres::kInsertSettingIfAbsent, p.values()));
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kSelectSetting, {name}));
    if (rows.size() != 1) {
      return std::unexpected(Internal("setting " + std::string(name) + " vanished"));
    }
    stored = rows.Text(0, 0);
    return inserted.size() > 0 ? AppendAudit(db, now_us, actor, "setting.set", name) : Ok();
  }));
  return stored;
}

// Certificate inventory.

Status PostgresRegistry::RecordCertificate(const CertificateRecord& record,
                                           std::string_view audit_action, const Actor& actor) {
  DEVID_TRY(store_codec::ValidateCertificate(record));
  DEVID_TRY(store_codec::ValidateIssueAction(audit_action));
  return Write([&](Connection& db) -> Status {
    CertificateRecord stored = store_codec::IssuedRecord(record, FromMicros(NowMicros()));
    Params p;
    row_codec::BindCertificate(p, stored);
    // The unique constraints decide, atomically across nodes: of two nodes inserting one
    // (issuer, serial), the second waits for the first's commit and then fails.
    if (auto inserted = db.Run(postgres::kInsertCertificate, p.values()); !inserted) {
      Error e = inserted.error();
      if (e.code() != ErrorCode::kAlreadyExists) return std::unexpected(e);
      return std::unexpected(AlreadyExists("recording certificate " + record.sha256_thumbprint +
                                           " (serial " + record.serial + " of " + record.issuer +
                                           "): its thumbprint or its issuer and serial are already "
                                           "recorded"));
    }
    return AppendAudit(db, ToMicros(stored.first_seen), actor, audit_action, record.serial);
  });
}

Status PostgresRegistry::ObserveCertificate(const CertificateRecord& record) {
  DEVID_TRY(store_codec::ValidateCertificate(record));
  return Write([&](Connection& db) -> Status {
    CertificateRecord stored = store_codec::ObservedRecord(record, FromMicros(NowMicros()));
    Params p;
    row_codec::BindCertificate(p, stored);
    if (auto observed = db.Run(postgres::kObserveCertificate, p.values()); !observed) {
      Error e = observed.error();
      if (e.code() != ErrorCode::kAlreadyExists) return std::unexpected(e);
      return std::unexpected(
          AlreadyExists("recording presented certificate " + record.sha256_thumbprint +
                        ": a different certificate with serial " + record.serial + " of " +
                        record.issuer + " is already recorded"));
    }
    return Ok();
  });
}

Result<Page<CertificateRecord>> PostgresRegistry::QueryCertificates(const CertificateFilter& filter,
                                                                    const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(certificate_sql::Cursor after,
                         certificate_sql::DecodeCursor(page.continuation));
  int limit = ClampPageSize(page.max_items);
  certificate_sql::Query query =
      certificate_sql::Page(filter, after, limit + 1, certificate_sql::Dialect::kPostgres);
  return Read<Page<CertificateRecord>>([&](Connection& db) -> Result<Page<CertificateRecord>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, RunQuery(db, query));
    return ReadPage<CertificateRecord>(rows, limit, ReadCertificate, certificate_sql::CursorKey);
  });
}

Result<std::vector<CertificateRecord>> PostgresRegistry::RevokeCertificates(
    const CertificateFilter& filter, int reason, const Actor& actor) {
  if (certificate_sql::IsEmpty(filter)) {
    return std::unexpected(InvalidArgument(
        "revoking certificates: the filter is empty; name the certificates to revoke"));
  }
  DEVID_TRY(store_codec::ValidateRevocationReason(reason));
  std::vector<CertificateRecord> revoked;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    revoked.clear();  // Write runs the transaction again after a serialization failure
    int64_t now_us = NowMicros();
    // One UPDATE finds and marks the rows under their row locks: of two nodes revoking the same
    // certificate at once, the second re-checks "revoked = 0" after the first commits and skips
    // it (PostgreSQL §13.2.1), so each certificate is revoked and audited once.
    DEVID_ASSIGN_OR_RETURN(
        Rows rows, RunQuery(db, certificate_sql::Revoke(filter, reason, now_us,
                                                        certificate_sql::Dialect::kPostgres)));
    for (int i = 0; i < rows.size(); ++i) {
      DEVID_ASSIGN_OR_RETURN(CertificateRecord record, ReadCertificate(rows, i));
      revoked.push_back(std::move(record));
    }
    if (revoked.empty()) {
      DEVID_ASSIGN_OR_RETURN(
          Rows any,
          RunQuery(db, certificate_sql::AnyIssued(filter, certificate_sql::Dialect::kPostgres)));
      if (any.empty()) {
        return std::unexpected(NotFound("revoking certificates: no issued certificate matches " +
                                        certificate_sql::Describe(filter)));
      }
      return Ok();  // all already revoked: nothing changes, nothing to audit
    }
    std::sort(revoked.begin(), revoked.end(), ByExpiry);
    DEVID_TRY(db.Run(postgres::kBumpRevocationVersion, {}));
    std::string outcome = store_codec::RevocationOutcome(reason);
    for (const CertificateRecord& record : revoked) {
      DEVID_TRY(AppendAudit(db, now_us, actor, kAuditCertificateRevoke, record.serial, outcome));
    }
    return Ok();
  }));
  return revoked;
}

Result<int64_t> PostgresRegistry::RevocationVersion() {
  return Read<int64_t>([&](Connection& db) -> Result<int64_t> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kSelectRevocationVersion, {}));
    return rows.empty() ? 0 : rows.Int(0, 0);
  });
}

// CA certificates.

Result<CaCertificate> PostgresRegistry::GetCaCertificate(std::string_view name) {
  return Read<CaCertificate>([&](Connection& db) {
    return ReadOne<CaCertificate>(db, postgres::kSelectCaCertificate, name, "CA certificate",
                                  ReadCaCertificate);
  });
}

Result<CaCertificate> PostgresRegistry::PutCaCertificate(
    const CaCertificate& certificate, const std::optional<std::string>& if_match,
    const Actor& actor) {
  DEVID_TRY(ca_certificate_store::ValidateUpload(certificate));
  CaCertificate stored = ca_certificate_store::Unverified(certificate);
  DEVID_TRY(Write([&](Connection& db) -> Status {
    if (if_match) {
      DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(postgres::kLockCaCertificate, {stored.name}));
      DEVID_TRY(CheckIfMatch(locked, *if_match, "updating", "CA certificate", stored.name));
    }
    auto [now_us, etag] = Stamp();
    stored.etag = std::move(etag);
    stored.created = stored.updated = FromMicros(now_us);
    Params p;
    row_codec::BindCaCertificate(p, stored);
    DEVID_ASSIGN_OR_RETURN(Rows upserted, db.Run(postgres::kUpsertCaCertificate, p.values()));
    stored.created = FromMicros(upserted.Int(0, 0));
    bool created = upserted.Bool(0, 1);
    return AppendAudit(db, now_us, actor,
                       created ? kAuditCaCertificateCreate : kAuditCaCertificateUpdate,
                       stored.name);
  }));
  return stored;
}

Status PostgresRegistry::DeleteCaCertificate(std::string_view name,
                                             const std::optional<std::string>& if_match,
                                             const Actor& actor) {
  return Write([&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(postgres::kLockCaCertificate, {name}));
    if (locked.empty()) return std::unexpected(NotFound(NotFoundMessage("CA certificate", name)));
    if (if_match) DEVID_TRY(CheckIfMatch(locked, *if_match, "deleting", "CA certificate", name));
    DEVID_ASSIGN_OR_RETURN(Rows referrer, db.Run(postgres::kCaCertificateReferrer, {name}));
    if (!referrer.empty()) {
      return std::unexpected(FailedPrecondition(
          ca_certificate_store::ReferencedMessage(name, referrer.Text(0, 0))));
    }
    DEVID_TRY(db.Run(postgres::kDeleteCaCertificate, {name}));
    return AppendAudit(db, NowMicros(), actor, kAuditCaCertificateDelete, name);
  });
}

Result<Page<CaCertificate>> PostgresRegistry::QueryCaCertificates(const PageRequest& page) {
  DEVID_ASSIGN_OR_RETURN(std::string after, DecodeContinuation(page.continuation));
  int limit = ClampPageSize(page.max_items);
  std::string fetch = std::to_string(limit + 1);
  return Read<Page<CaCertificate>>([&](Connection& db) -> Result<Page<CaCertificate>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kPageCaCertificates, {after, fetch}));
    return ReadPage<CaCertificate>(rows, limit, ReadCaCertificate,
                                   [](const CaCertificate& c) { return c.name; });
  });
}

Result<CaCertificate> PostgresRegistry::SetCaVerificationCode(
    std::string_view name, std::string_view code_hash,
    std::chrono::system_clock::time_point expires, const std::optional<std::string>& if_match,
    const Actor& actor) {
  if (code_hash.empty()) {
    return std::unexpected(InvalidArgument("the verification code hash is empty"));
  }
  CaCertificate stored;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    DEVID_ASSIGN_OR_RETURN(Rows locked, db.Run(postgres::kLockCaCertificate, {name}));
    if (locked.empty()) return std::unexpected(NotFound(NotFoundMessage("CA certificate", name)));
    if (if_match) {
      DEVID_TRY(CheckIfMatch(locked, *if_match, "generating a code for", "CA certificate", name));
    }
    auto [now_us, etag] = Stamp();
    Params p;
    p.Text(name);
    p.Text(code_hash);
    p.Int(ToMicros(expires));
    p.Text(etag);
    p.Int(now_us);
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kSetCaVerificationCode, p.values()));
    if (rows.empty()) {
      return std::unexpected(Internal("CA certificate " + std::string(name) + " vanished"));
    }
    DEVID_ASSIGN_OR_RETURN(stored, ReadCaCertificate(rows, 0));
    return AppendAudit(db, now_us, actor, kAuditCaCertificateCode, name);
  }));
  return stored;
}

Result<CaCertificate> PostgresRegistry::VerifyCaCertificate(std::string_view name,
                                                            std::string_view sha256_thumbprint,
                                                            std::string_view code_hash,
                                                            const Actor& actor) {
  CaCertificate stored;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    auto [now_us, etag] = Stamp();
    Params p;
    p.Text(name);
    p.Text(sha256_thumbprint);
    p.Text(code_hash);
    p.Int(now_us);
    p.Text(etag);
    p.Int(now_us);
    // The UPDATE re-checks its WHERE on the row after a concurrent writer commits (PostgreSQL
    // §13.2.1), so of two nodes consuming one code, the second matches nothing.
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kConsumeCaVerificationCode, p.values()));
    if (!rows.empty()) {
      DEVID_ASSIGN_OR_RETURN(stored, ReadCaCertificate(rows, 0));
      return AppendAudit(db, now_us, actor, kAuditCaCertificateVerify, name);
    }
    DEVID_ASSIGN_OR_RETURN(CaCertificate current,
                           ReadOne<CaCertificate>(db, postgres::kSelectCaCertificate, name,
                                                  "CA certificate", ReadCaCertificate));
    return std::unexpected(ca_certificate_store::VerificationRefusal(
        current, sha256_thumbprint, code_hash, FromMicros(now_us)));
  }));
  return stored;
}

// Audit.

// Server-signed commands.

Result<DeviceCommand> PostgresRegistry::AddDeviceCommand(const DeviceCommand& command,
                                                         const Actor& actor) {
  DEVID_TRY(store_codec::ValidateDeviceCommand(command, FromMicros(NowMicros())));
  DeviceCommand stored = command;
  DEVID_TRY(Write([&](Connection& db) -> Status {
    int64_t now_us = NowMicros();
    // The registration's row lock queues the device's signers across nodes, so each reads the
    // MAX its predecessor committed (READ COMMITTED takes a new snapshot per statement).
    DEVID_ASSIGN_OR_RETURN(Rows registration,
                           db.Run(postgres::kLockRegistration, {command.device_id}));
    if (registration.empty()) {
      return std::unexpected(NotFound(NotFoundMessage("registration", command.device_id)));
    }
    Params p;
    p.Text(command.device_id);
    p.Int(now_us);
    p.Int(ToMicros(command.expires));
    p.Text(command.body_sha256);
    auto inserted = db.Run(postgres::kInsertDeviceCommand, p.values());
    if (!inserted) {
      // The primary key decides; a lost race is retried by Write as a whole.
      if (inserted.error().code() == ErrorCode::kAlreadyExists) {
        return std::unexpected(Aborted("storing a command for " + command.device_id +
                                       ": its sequence number was taken concurrently"));
      }
      return std::unexpected(inserted.error());
    }
    if (inserted->empty()) return std::unexpected(Internal("storing a command: no sequence"));
    stored.sequence = inserted->Int(0, 0);
    stored.issued = FromMicros(now_us);
    return AppendAudit(db, now_us, actor, kAuditCommandSign, command.device_id,
                       store_codec::CommandOutcome(stored.sequence));
  }));
  return stored;
}

Status PostgresRegistry::RecordAudit(std::string_view action, std::string_view object,
                                     std::string_view outcome, const Actor& actor) {
  return Write([&](Connection& db) -> Status {
    return AppendAudit(db, NowMicros(), actor, action, object, outcome);
  });
}

Result<std::vector<AuditRecord>> PostgresRegistry::ListAudit(int64_t after, int limit) {
  if (limit <= 0) return std::vector<AuditRecord>();
  std::string from = std::to_string(after);
  std::string count = std::to_string(std::min(limit, kMaxPageItems));
  return Read<std::vector<AuditRecord>>([&](Connection& db) -> Result<std::vector<AuditRecord>> {
    DEVID_ASSIGN_OR_RETURN(Rows rows, db.Run(postgres::kPageAudit, {from, count}));
    std::vector<AuditRecord> records;
    records.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
      Columns c(rows, i);
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
