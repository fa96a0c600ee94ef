#include "registry/sqlite/sqlite_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "registry/audit_chain_conformance_test.h"
#include "registry/ca_certificate_conformance_test.h"
#include "registry/device_command_conformance_test.h"
#include "registry/migrations/sqlite_migrations.h"
#include "registry/registry_conformance_test.h"
#include "registry/sqlite/connection.h"
#include "registry/sqlite/queries.h"

namespace devid::registry {
namespace {

using ::testing::HasSubstr;

// TempDir is a fresh directory under the test temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    SecureRandom random;
    path_ = std::filesystem::path(::testing::TempDir()) / ("devid-registry-" + random.Hex(8));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// SqliteRegistryFactory gives each conformance test its own database file.
class SqliteRegistryFactory {
 public:
  Result<std::unique_ptr<Registry>> Open(Clock& clock, Random& random) {
    DEVID_ASSIGN_OR_RETURN(std::unique_ptr<SqliteRegistry> registry,
                           SqliteRegistry::Open(path(), clock, random));
    return std::unique_ptr<Registry>(std::move(registry));
  }
  std::string path() const { return (dir_.path() / "devid.db").string(); }
  Status ExecSql(std::string_view sql) {
    DEVID_ASSIGN_OR_RETURN(sqlite::Connection db,
                           sqlite::Connection::Open(path(), sqlite::ConnectionOptions()));
    return db.Exec(sql);
  }

 private:
  TempDir dir_;
};

}  // namespace

namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, RegistryConformanceTest,
                               ::testing::Types<SqliteRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, CaCertificateConformanceTest,
                               ::testing::Types<SqliteRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, AuditChainConformanceTest,
                               ::testing::Types<SqliteRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, DeviceCommandConformanceTest,
                               ::testing::Types<SqliteRegistryFactory>);
}  // namespace conformance

namespace {

// ByThumbprint selects the one certificate with that SHA-256 thumbprint.
CertificateFilter ByThumbprint(const std::string& sha256_thumbprint) {
  CertificateFilter filter;
  filter.sha256_thumbprint = sha256_thumbprint;
  return filter;
}

class SqliteRegistryTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "devid.db").string(); }

  std::unique_ptr<SqliteRegistry> OpenOrDie() {
    auto opened = SqliteRegistry::Open(path(), clock_, random_);
    EXPECT_TRUE(opened.has_value()) << opened.error().message();
    return opened ? std::move(*opened) : nullptr;
  }

  // OpenDeferringForever opens the registry with sightings that commit only with another write.
  std::unique_ptr<SqliteRegistry> OpenDeferringForever() {
    SqliteRegistryOptions options;
    options.max_defer = std::chrono::hours(1);
    auto opened = SqliteRegistry::Open(path(), clock_, random_, options);
    EXPECT_TRUE(opened.has_value()) << opened.error().message();
    return opened ? std::move(*opened) : nullptr;
  }

  // Inspect opens the database file directly, as a second process would.
  sqlite::Connection Inspect() {
    auto db = sqlite::Connection::Open(path(), sqlite::ConnectionOptions{});
    EXPECT_TRUE(db.has_value()) << db.error().message();
    return std::move(*db);
  }

  int64_t QueryInt(sqlite::Connection& db, std::string_view sql) {
    auto stmt = db.Prepare(sql);
    EXPECT_TRUE(stmt.has_value()) << stmt.error().message();
    auto row = (*stmt)->Step();
    EXPECT_TRUE(row.has_value() && *row);
    return (*stmt)->ColumnInt64(0);
  }

  TempDir dir_;
  FakeClock clock_{conformance::StartTime()};
  SecureRandom random_;
  Actor actor_{"cli"};
};

TEST_F(SqliteRegistryTest, Applies_MigrationsOnce) {
  OpenOrDie().reset();
  clock_.Advance(std::chrono::hours(1));
  OpenOrDie().reset();
  sqlite::Connection db = Inspect();
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(SqliteMigrations().size()));
  EXPECT_EQ(QueryInt(db, "SELECT MAX(version) FROM schema_migrations"),
            SqliteMigrations().back().version);
  EXPECT_EQ(QueryInt(db, "SELECT MAX(applied_us) FROM schema_migrations"),
            conformance::Micros(conformance::StartTime()));
}

TEST_F(SqliteRegistryTest, Refuses_DatabaseOfNewerSchema) {
  OpenOrDie().reset();
  {
    sqlite::Connection db = Inspect();
    ASSERT_TRUE(db.Exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  }
  auto opened = SqliteRegistry::Open(path(), clock_, random_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(opened.error().message(), HasSubstr("newer devid"));
}

TEST_F(SqliteRegistryTest, Fails_OpenInMissingDirectory) {
  auto opened =
      SqliteRegistry::Open((dir_.path() / "no-such-dir" / "devid.db").string(), clock_, random_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().message(), HasSubstr("no-such-dir"));
}

TEST_F(SqliteRegistryTest, Uses_WriteAheadLog) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  sqlite::Connection db = Inspect();
  auto stmt = db.Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(stmt.has_value());
  ASSERT_TRUE((*stmt)->Step().value_or(false));
  EXPECT_EQ((*stmt)->ColumnText(0), "wal");
}

TEST_F(SqliteRegistryTest, Probes_PrefixIndexForGroupCandidates) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  // With many groups and fresh statistics the planner must still probe the index per prefix.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(registry->PutEnrollmentGroup(
        conformance::MakeGroup("g" + std::to_string(i), "p" + std::to_string(i)), std::nullopt,
        actor_));
  }
  sqlite::Connection db = Inspect();
  ASSERT_TRUE(db.Exec("ANALYZE"));
  auto stmt = db.Prepare("EXPLAIN QUERY PLAN " + std::string(sqlite::kFindGroupCandidates));
  ASSERT_TRUE(stmt.has_value()) << stmt.error().message();
  std::string plan;
  for (;;) {
    auto row = (*stmt)->Step();
    ASSERT_TRUE(row.has_value()) << row.error().message();
    if (!*row) break;
    plan += (*stmt)->ColumnText(3) + "\n";  // the "detail" column
  }
  EXPECT_THAT(plan, HasSubstr("SEARCH g USING INDEX enrollment_groups_by_prefix"));
  EXPECT_THAT(plan, ::testing::Not(HasSubstr("SCAN g")));
}

TEST_F(SqliteRegistryTest, Commits_ConcurrentWritesInSharedTransactions) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  constexpr int kThreads = 32;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto saved = registry->SaveRegistration(
            conformance::MakeRegistration(std::to_string(t) + "-" + std::to_string(i)), actor_);
        if (!saved) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  SqliteRegistryStats stats = registry->stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.transactions, stats.writes) << "no two writes shared a transaction";
}

// A sighting waits for another write's transaction instead of syncing alone, yet the registry's
// own queries see it at once; the revocation check, which it cannot change, does not wait for it.
TEST_F(SqliteRegistryTest, Commits_ObservationWithTheNextWrite) {
  auto opened = OpenDeferringForever();
  ASSERT_NE(opened, nullptr);
  SqliteRegistry& registry = *opened;
  CertificateRecord seen = conformance::MakeCertificate("0A");
  ASSERT_TRUE(registry.ObserveCertificate(seen));
  CertificateFilter revoked;
  revoked.sha256_thumbprint = seen.sha256_thumbprint;
  revoked.revoked = true;
  auto none = registry.QueryCertificates(revoked, {});
  ASSERT_TRUE(none.has_value()) << none.error().message();
  EXPECT_TRUE(none->items.empty());
  EXPECT_EQ(registry.stats().transactions, 0u) << "the revocation check waited for the sighting";

  ASSERT_TRUE(registry.SaveRegistration(conformance::MakeRegistration("dev-1"), actor_));
  SqliteRegistryStats stats = registry.stats();
  EXPECT_EQ(stats.transactions, 1u);
  EXPECT_EQ(stats.writes, 2u);
  sqlite::Connection db = Inspect();
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM certificates WHERE source = 'observed'"), 1);
}

TEST_F(SqliteRegistryTest, Reads_OwnObservationAtOnce) {
  auto opened = OpenDeferringForever();
  ASSERT_NE(opened, nullptr);
  SqliteRegistry& registry = *opened;
  // A query naming no thumbprint waits for every sighting; one naming a thumbprint for its own.
  CertificateRecord first = conformance::MakeCertificate("0A", "dev-1");
  ASSERT_TRUE(registry.ObserveCertificate(first));
  CertificateFilter by_device;
  by_device.device_id = "dev-1";
  auto listed = registry.QueryCertificates(by_device, {});
  ASSERT_TRUE(listed.has_value()) << listed.error().message();
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].source, CertificateSource::kObserved);

  CertificateRecord second = conformance::MakeCertificate("0B", "dev-2");
  ASSERT_TRUE(registry.ObserveCertificate(second));
  auto found = registry.QueryCertificates(ByThumbprint(second.sha256_thumbprint), {});
  ASSERT_TRUE(found.has_value()) << found.error().message();
  ASSERT_EQ(found->items.size(), 1u);
  EXPECT_EQ(found->items[0].device_id, "dev-2");
}

TEST_F(SqliteRegistryTest, ReadConsistently_ReadsOneSnapshotUntilTheScopeEnds) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  ASSERT_TRUE(registry->PutEnrollment(conformance::MakeEnrollment("dev-1"), std::nullopt, actor_));
  {
    auto scope = registry->ReadConsistently();
    ASSERT_NE(scope, nullptr);
    EXPECT_EQ(registry->ReadConsistently(), nullptr) << "one scope per thread";
    EXPECT_TRUE(registry->GetEnrollment("dev-1").has_value());
    // Another thread's reads are not in the scope; they see a write at once.
    std::thread writer([&] {
      ASSERT_TRUE(
          registry->PutEnrollment(conformance::MakeEnrollment("dev-2"), std::nullopt, actor_));
      EXPECT_TRUE(registry->GetEnrollment("dev-2").has_value());
    });
    writer.join();
    auto in_scope = registry->GetEnrollment("dev-2");
    ASSERT_FALSE(in_scope.has_value()) << "the scope's snapshot predates the write";
    EXPECT_EQ(in_scope.error().code(), ErrorCode::kNotFound);
  }
  EXPECT_TRUE(registry->GetEnrollment("dev-2").has_value());
  EXPECT_NE(registry->ReadConsistently(), nullptr);
}

TEST_F(SqliteRegistryTest, ReadConsistently_StillReadsOwnQueuedWrites) {
  auto opened = OpenDeferringForever();
  ASSERT_NE(opened, nullptr);
  SqliteRegistry& registry = *opened;
  auto scope = registry.ReadConsistently();
  ASSERT_NE(scope, nullptr);
  EXPECT_FALSE(registry.GetEnrollment("dev-1").has_value());  // the snapshot begins here
  CertificateRecord seen = conformance::MakeCertificate("0C", "dev-3");
  ASSERT_TRUE(registry.ObserveCertificate(seen));
  auto found = registry.QueryCertificates(ByThumbprint(seen.sha256_thumbprint), {});
  ASSERT_TRUE(found.has_value()) << found.error().message();
  EXPECT_EQ(found->items.size(), 1u) << "flushed, and read from a new snapshot";
  ASSERT_TRUE(registry.RecordAudit("token.issue", "dev-3", "aud=x", actor_));
  auto audit = registry.ListAudit(0, 100);
  ASSERT_TRUE(audit.has_value()) << audit.error().message();
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ(audit->back().object, "dev-3");
}

// The reads a certificate-authenticated request makes in its scope (the token authority's).
struct ScopeReads {
  Result<Enrollment> enrollment;
  Result<EnrollmentGroup> group;
  Result<Registration> registration;
  Result<Page<CertificateRecord>> certificate;
};

ScopeReads ReadInScope(SqliteRegistry& registry, const std::string& thumbprint) {
  auto scope = registry.ReadConsistently();
  EXPECT_NE(scope, nullptr);
  return ScopeReads{registry.GetEnrollment("dev-1"), registry.GetEnrollmentGroup("group-1"),
                    registry.GetRegistration("dev-1"),
                    registry.QueryCertificates(ByThumbprint(thumbprint), {.max_items = 1})};
}

TEST_F(SqliteRegistryTest, ReadConsistently_SeesWhatAnotherProcessChanged) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  ASSERT_TRUE(registry->PutEnrollment(conformance::MakeEnrollment("dev-1"), std::nullopt, actor_));
  CertificateRecord issued = conformance::MakeCertificate("0A", "dev-1");
  ASSERT_TRUE(registry->RecordCertificate(issued, kAuditCertificateIssue, actor_));
  ScopeReads before = ReadInScope(*registry, issued.sha256_thumbprint);
  ASSERT_TRUE(before.enrollment.has_value());
  EXPECT_EQ(before.group.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(before.registration.error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(before.certificate.has_value());
  ASSERT_EQ(before.certificate->items.size(), 1u);
  EXPECT_FALSE(before.certificate->items[0].revoked);
  {
    // Another process (the CLI on the same file) changes every row the scope read.
    auto other = OpenOrDie();
    ASSERT_NE(other, nullptr);
    Enrollment disabled = conformance::MakeEnrollment("dev-1");
    disabled.settings.enabled = false;
    ASSERT_TRUE(other->PutEnrollment(disabled, std::nullopt, actor_));
    ASSERT_TRUE(other->PutEnrollmentGroup(conformance::MakeGroup("group-1"), std::nullopt, actor_));
    ASSERT_TRUE(other->SaveRegistration(conformance::MakeRegistration("dev-1"), actor_));
    ASSERT_TRUE(other->RevokeCertificates(ByThumbprint(issued.sha256_thumbprint), 1, actor_));
  }
  ScopeReads after = ReadInScope(*registry, issued.sha256_thumbprint);
  ASSERT_TRUE(after.enrollment.has_value());
  EXPECT_FALSE(after.enrollment->settings.enabled);
  EXPECT_TRUE(after.group.has_value());
  EXPECT_TRUE(after.registration.has_value());
  ASSERT_TRUE(after.certificate.has_value());
  ASSERT_EQ(after.certificate->items.size(), 1u);
  EXPECT_TRUE(after.certificate->items[0].revoked);
  // Raw SQL, as any other writer would: the change counter moves all the same.
  sqlite::Connection db = Inspect();
  ASSERT_TRUE(db.Exec("DELETE FROM enrollments WHERE registration_id = 'dev-1'"));
  EXPECT_EQ(ReadInScope(*registry, issued.sha256_thumbprint).enrollment.error().code(),
            ErrorCode::kNotFound);
}

TEST_F(SqliteRegistryTest, ReadConsistently_ReusesRowsWhileTheChangeCounterStands) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  ASSERT_TRUE(registry->PutEnrollment(conformance::MakeEnrollment("dev-1"), std::nullopt, actor_));
  ASSERT_TRUE(ReadInScope(*registry, "00").enrollment.has_value());
  // A change that does not move the counter shows that the second scope read no row: only the
  // triggers of migration 8 keep such a change from happening.
  sqlite::Connection db = Inspect();
  ASSERT_TRUE(
      db.Exec("DROP TRIGGER enrollments_updated; "
              "UPDATE enrollments SET device_id = 'changed' WHERE registration_id = 'dev-1'"));
  auto cached = ReadInScope(*registry, "00").enrollment;
  ASSERT_TRUE(cached.has_value());
  EXPECT_NE(cached->device_id, "changed");
  auto read = registry->GetEnrollment("dev-1");  // outside a scope: always read
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->device_id, "changed");
}

TEST_F(SqliteRegistryTest, ChangeCounter_MovesWithIdentityRowsNotWithAuditRecords) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  sqlite::Connection db = Inspect();
  auto count = [&] { return QueryInt(db, sqlite::kSelectChangeCount); };
  int64_t start = count();
  ASSERT_TRUE(registry->PutEnrollment(conformance::MakeEnrollment("dev-1"), std::nullopt, actor_));
  EXPECT_GT(count(), start);
  start = count();
  ASSERT_TRUE(registry->RecordAudit("token.issue", "dev-1", "aud=dev-2", actor_));
  ASSERT_TRUE(registry->ListAudit(0, 10));  // settles the queued record
  EXPECT_EQ(count(), start) << "issuing tokens must not invalidate the rows they read";
  CertificateRecord seen = conformance::MakeCertificate("0B", "dev-1");
  ASSERT_TRUE(registry->ObserveCertificate(seen));
  ASSERT_TRUE(registry->QueryCertificates(ByThumbprint(seen.sha256_thumbprint),
                                          {}));  // settles the observation
  EXPECT_GT(count(), start);
  start = count();
  ASSERT_TRUE(registry->DeleteEnrollment("dev-1", std::nullopt, actor_));
  EXPECT_GT(count(), start);
}

TEST_F(SqliteRegistryTest, TryReadConsistently_DoesNotWaitForAReadConnection) {
  SqliteRegistryOptions options;
  options.max_readers = 1;
  auto opened = SqliteRegistry::Open(path(), clock_, random_, options);
  ASSERT_TRUE(opened.has_value()) << opened.error().message();
  SqliteRegistry& registry = **opened;
  std::promise<void> holding;
  std::promise<void> release;
  std::thread holder([&] {
    auto scope = registry.ReadConsistently();  // the pool's only connection
    EXPECT_NE(scope, nullptr);
    holding.set_value();
    release.get_future().wait();
  });
  holding.get_future().wait();
  EXPECT_EQ(registry.TryReadConsistently(), nullptr) << "it would wait for the holder";
  release.set_value();
  holder.join();
  EXPECT_NE(registry.TryReadConsistently(), nullptr);
}

TEST_F(SqliteRegistryTest, Rejects_HubNameWithLineBreak) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  Enrollment e = conformance::MakeEnrollment("dev-1");
  e.settings.iot_hubs = {"hub-a\nhub-b"};
  auto put = registry->PutEnrollment(e, std::nullopt, actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SqliteRegistryTest, ReadOnly_ReadsWhatTheWriterCommittedAndRefusesWrites) {
  auto writer = OpenOrDie();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->PutEnrollment(conformance::MakeEnrollment("dev-1"), std::nullopt, actor_));

  SqliteRegistryOptions options;
  options.read_only = true;
  auto opened = SqliteRegistry::Open(path(), clock_, random_, options);
  ASSERT_TRUE(opened.has_value()) << opened.error().message();
  SqliteRegistry& reader = **opened;
  EXPECT_TRUE(reader.GetEnrollment("dev-1").has_value());
  // A write committed after the reader opened is visible to it.
  ASSERT_TRUE(writer->PutEnrollment(conformance::MakeEnrollment("dev-2"), std::nullopt, actor_));
  EXPECT_TRUE(reader.GetEnrollment("dev-2").has_value());

  auto put = reader.PutEnrollment(conformance::MakeEnrollment("dev-3"), std::nullopt, actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(put.error().message(), HasSubstr("read-only"));
  auto set = reader.SetSetting("x", "y", actor_);
  ASSERT_FALSE(set.has_value());
  EXPECT_EQ(set.error().code(), ErrorCode::kFailedPrecondition);
  // A sighting, though deferred on a writable registry, is refused at once here.
  auto observed = reader.ObserveCertificate(conformance::MakeCertificate("0A"));
  ASSERT_FALSE(observed.has_value());
  EXPECT_EQ(observed.error().code(), ErrorCode::kFailedPrecondition);
  // So is an audit record, though queued on a writable registry.
  auto audited = reader.RecordAudit("token.issue", "dev-1", "aud=dev-2", actor_);
  ASSERT_FALSE(audited.has_value());
  EXPECT_EQ(audited.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(reader.stats().writes, 0u);
}

TEST_F(SqliteRegistryTest, ReadOnly_DoesNotCreateMissingFile) {
  SqliteRegistryOptions options;
  options.read_only = true;
  auto opened = SqliteRegistry::Open(path(), clock_, random_, options);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(path()));
}

}  // namespace
}  // namespace devid::registry
