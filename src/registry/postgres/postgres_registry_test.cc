#include "registry/postgres/postgres_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "registry/migrations/postgres_migrations.h"
#include "registry/migrations/sqlite_migrations.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/testing/test_database.h"
#include "registry/audit_chain_conformance_test.h"
#include "registry/ca_certificate_conformance_test.h"
#include "registry/device_command_conformance_test.h"
#include "registry/registry_conformance_test.h"

namespace devid::registry {
namespace {

using postgres::testing::MissingServerIsFailure;
using postgres::testing::MissingServerMessage;
using postgres::testing::TestDatabase;
using postgres::testing::TestServerUrl;
using ::testing::HasSubstr;

// SkipReasonWithoutServer is why a PostgreSQL test cannot run here, or "" when it can (or must:
// in CI a missing server fails the test instead).
std::string SkipReasonWithoutServer() {
  if (!TestServerUrl().empty() || MissingServerIsFailure()) return "";
  return MissingServerMessage();
}

// PostgresRegistryFactory gives each conformance test its own database, created on first Open and
// dropped with the factory.
class PostgresRegistryFactory {
 public:
  std::string SkipReason() const { return SkipReasonWithoutServer(); }

  Result<std::unique_ptr<Registry>> Open(Clock& clock, Random& random) {
    if (!db_) {
      DEVID_ASSIGN_OR_RETURN(TestDatabase db, TestDatabase::Create());
      db_.emplace(std::move(db));
    }
    DEVID_ASSIGN_OR_RETURN(std::unique_ptr<PostgresRegistry> registry,
                           PostgresRegistry::Open(db_->url(), clock, random));
    return std::unique_ptr<Registry>(std::move(registry));
  }
  Status ExecSql(std::string_view sql) {
    if (!db_) return std::unexpected(FailedPrecondition("the test database is not created yet"));
    DEVID_ASSIGN_OR_RETURN(postgres::Connection db, postgres::Connection::Open(db_->url()));
    return db.Exec(sql);
  }

 private:
  std::optional<TestDatabase> db_;
};

}  // namespace

namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, RegistryConformanceTest,
                               ::testing::Types<PostgresRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, CaCertificateConformanceTest,
                               ::testing::Types<PostgresRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, AuditChainConformanceTest,
                               ::testing::Types<PostgresRegistryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, DeviceCommandConformanceTest,
                               ::testing::Types<PostgresRegistryFactory>);
}  // namespace conformance

namespace {

// PostgresRegistryTest holds one fresh database; each test may open several registries on it, as
// several devid nodes would.
class PostgresRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string reason = SkipReasonWithoutServer(); !reason.empty()) GTEST_SKIP() << reason;
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.has_value()) << db.error().message();
    db_.emplace(std::move(*db));
  }

  std::unique_ptr<PostgresRegistry> OpenOrDie() {
    auto opened = PostgresRegistry::Open(db_->url(), clock_, random_);
    EXPECT_TRUE(opened.has_value()) << opened.error().message();
    return opened ? std::move(*opened) : nullptr;
  }

  // Inspect connects to the database directly, as an operator's psql would.
  postgres::Connection Inspect() {
    auto db = postgres::Connection::Open(db_->url());
    EXPECT_TRUE(db.has_value()) << db.error().message();
    return std::move(*db);
  }

  int64_t QueryInt(std::string_view sql) {
    postgres::Connection db = Inspect();
    auto rows = db.Run(sql, {});
    EXPECT_TRUE(rows.has_value()) << rows.error().message();
    if (!rows || rows->empty()) return -1;
    return rows->Int(0, 0);
  }

  std::optional<TestDatabase> db_;
  FakeClock clock_{conformance::StartTime()};
  SecureRandom random_;
  Actor actor_{"cli"};
};

TEST_F(PostgresRegistryTest, Mirrors_SqliteMigrationsStepForStep) {
  auto pg = PostgresMigrations();
  auto sqlite = SqliteMigrations();
  ASSERT_EQ(pg.size(), sqlite.size());
  for (size_t i = 0; i < pg.size(); ++i) {
    EXPECT_EQ(pg[i].version, sqlite[i].version);
    EXPECT_EQ(pg[i].name, sqlite[i].name);
  }
}

TEST_F(PostgresRegistryTest, Applies_MigrationsOnce) {
  OpenOrDie().reset();
  clock_.Advance(std::chrono::hours(1));
  OpenOrDie().reset();
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(PostgresMigrations().size()));
  EXPECT_EQ(QueryInt("SELECT MAX(version) FROM schema_migrations"),
            PostgresMigrations().back().version);
  EXPECT_EQ(QueryInt("SELECT MAX(applied_us) FROM schema_migrations"),
            conformance::Micros(conformance::StartTime()));
}

TEST_F(PostgresRegistryTest, Applies_MigrationsOnceWhenNodesStartTogether) {
  constexpr int kNodes = 8;
  std::vector<std::thread> nodes;
  std::atomic<int> failures{0};
  for (int i = 0; i < kNodes; ++i) {
    nodes.emplace_back([&] {
      FakeClock clock(conformance::StartTime());
      SecureRandom random;
      auto opened = PostgresRegistry::Open(db_->url(), clock, random);
      if (!opened) {
        ADD_FAILURE() << opened.error().message();
        ++failures;
      }
    });
  }
  for (auto& node : nodes) node.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(PostgresMigrations().size()));
  // No node holds the migration lock once it has started.
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                     "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            0);
}

TEST_F(PostgresRegistryTest, Refuses_DatabaseOfNewerSchema) {
  OpenOrDie().reset();
  {
    postgres::Connection db = Inspect();
    ASSERT_TRUE(db.Exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  }
  auto opened = PostgresRegistry::Open(db_->url(), clock_, random_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(opened.error().message(), HasSubstr("newer devid"));
}

TEST_F(PostgresRegistryTest, Fails_OpenOfUnreachableServer) {
  // Port 1 on localhost refuses connections.
  auto opened = PostgresRegistry::Open("postgresql://devid@127.0.0.1:1/devid", clock_, random_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().message(), HasSubstr("connecting to PostgreSQL"));
}

TEST_F(PostgresRegistryTest, Admits_OneOfTwoNodesUpdatingWithTheSameEtag) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  for (int round = 0; round < 20; ++round) {
    std::string id = "dev-" + std::to_string(round);
    auto put = node_a->PutEnrollment(conformance::MakeEnrollment(id), std::nullopt, actor_);
    ASSERT_TRUE(put.has_value()) << put.error().message();
    std::string etag = put->settings.etag;
    std::atomic<int> won{0}, lost{0};
    auto update = [&](PostgresRegistry& node, const std::string& name) {
      Enrollment e = conformance::MakeEnrollment(id);
      e.device_id = name;
      auto r = node.PutEnrollment(e, etag, actor_);
      if (r) {
        ++won;
      } else if (r.error().code() == ErrorCode::kFailedPrecondition) {
        ++lost;
      }
    };
    std::thread a([&] { update(*node_a, "by-a"); });
    std::thread b([&] { update(*node_b, "by-b"); });
    a.join();
    b.join();
    EXPECT_EQ(won.load(), 1) << "round " << round;
    EXPECT_EQ(lost.load(), 1) << "round " << round;
  }
}

TEST_F(PostgresRegistryTest, Keeps_OneRegistrationAndOrderedAuditAcrossNodes) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  constexpr int kDevices = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      PostgresRegistry& node = t % 2 == 0 ? *node_a : *node_b;
      for (int i = 0; i < kDevices; ++i) {
        // Every thread registers every device: the same rows written from both nodes at once.
        auto saved = node.SaveRegistration(
            conformance::MakeRegistration("dev-" + std::to_string(i), "fleet"), actor_);
        if (!saved) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM registrations"), kDevices);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM registrations "
                     "WHERE device_id = registration_id || '-device' AND status = 'assigned'"),
            kDevices);
  // The audit log is one sequence with every write, in commit order and without gaps.
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log"), 8 * kDevices);
  EXPECT_EQ(QueryInt("SELECT MAX(sequence) - MIN(sequence) + 1 FROM audit_log"), 8 * kDevices);
}

TEST_F(PostgresRegistryTest, Shows_AuditRecordsInSequenceOrderToATailingReader) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  constexpr int kWriters = 8;
  constexpr int kPerWriter = 60;
  constexpr int kTotal = kWriters * kPerWriter;
  std::atomic<int> writing{kWriters};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      PostgresRegistry& node = w % 2 == 0 ? *node_a : *node_b;
      for (int i = 0; i < kPerWriter; ++i) {
        EXPECT_TRUE(node.SetSetting("s" + std::to_string(w), std::to_string(i), actor_));
      }
      --writing;
    });
  }
  // A reader that pages by "sequence after the last one seen" must see every record: a later
  // sequence number never becomes visible before an earlier one.
  std::vector<int64_t> seen;
  for (;;) {
    bool last_pass = writing.load() == 0;  // after this read, nothing more can commit
    auto page = node_b->ListAudit(seen.empty() ? 0 : seen.back(), 1000);
    if (!page) {
      ADD_FAILURE() << page.error().message();
      break;
    }
    for (const AuditRecord& r : *page) seen.push_back(r.sequence);
    if (last_pass && page->empty()) break;
  }
  for (auto& writer : writers) writer.join();
  ASSERT_EQ(static_cast<int>(seen.size()), kTotal);
  for (size_t i = 1; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i], seen[i - 1] + 1) << "the reader skipped a record at " << i;
  }
}

TEST_F(PostgresRegistryTest, Consumes_ChallengeOnceAcrossNodes) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  Challenge challenge{"tpm-1", "c2VjcmV0", conformance::StartTime() + std::chrono::minutes(5)};
  ASSERT_TRUE(node_a->PutChallenge(challenge, actor_));
  auto seen = node_b->GetChallenge("tpm-1");
  ASSERT_TRUE(seen.has_value()) << seen.error().message();
  EXPECT_EQ(seen->secret, "c2VjcmV0");
  ASSERT_TRUE(node_b->SaveRegistration(conformance::MakeRegistration("tpm-1"), actor_));
  auto gone = node_a->GetChallenge("tpm-1");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(PostgresRegistryTest, Records_OneCertificatePerSerialAcrossNodes) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  constexpr int kPerNode = 8;
  std::atomic<int> recorded{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kPerNode; ++t) {
    threads.emplace_back([&, t] {
      // Each node signed its own certificate with the same serial under the same CA.
      CertificateRecord r = conformance::MakeCertificate("5E5E", "dev-" + std::to_string(t));
      r.sha256_thumbprint = "SHA256-NODE-" + std::to_string(t);
      PostgresRegistry& node = t < kPerNode ? *node_a : *node_b;
      auto s = node.RecordCertificate(r, kAuditCertificateIssue, actor_);
      if (s) {
        ++recorded;
      } else if (s.error().code() != ErrorCode::kAlreadyExists) {
        ++unexpected;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(recorded.load(), 1);
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM certificates"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.issue'"), 1);
}

TEST_F(PostgresRegistryTest, Revokes_CertificateOnceAcrossNodes) {
  auto node_a = OpenOrDie();
  auto node_b = OpenOrDie();
  ASSERT_TRUE(node_a && node_b);
  ASSERT_TRUE(node_a->RecordCertificate(conformance::MakeCertificate("0A"), kAuditCertificateIssue,
                                        actor_));
  CertificateFilter by_serial;
  by_serial.serial = "0A";
  constexpr int kPerNode = 6;
  std::atomic<int> revoked{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kPerNode; ++t) {
    threads.emplace_back([&, t] {
      PostgresRegistry& node = t < kPerNode ? *node_a : *node_b;
      auto result = node.RevokeCertificates(by_serial, 1, actor_);
      if (!result) {
        ++failures;
      } else {
        revoked += static_cast<int>(result->size());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(revoked.load(), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.revoke'"), 1);
  // Every node sees the one bump of the version.
  EXPECT_EQ(node_a->RevocationVersion().value_or(-1), 1);
  EXPECT_EQ(node_b->RevocationVersion().value_or(-1), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM certificates WHERE revoked = 1"), 1);
}

TEST_F(PostgresRegistryTest, Reconnects_AfterTheServerDropsIdleConnections) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  ASSERT_TRUE(registry->SetSetting("idScope", "0ne1", actor_));
  {
    postgres::Connection admin = Inspect();
    auto killed = admin.Run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        {});
    ASSERT_TRUE(killed.has_value()) << killed.error().message();
  }
  auto value = registry->GetSetting("idScope");
  ASSERT_TRUE(value.has_value()) << value.error().message();
  EXPECT_EQ(*value, std::optional<std::string>("0ne1"));
  EXPECT_TRUE(registry->SetSetting("idScope", "0ne2", actor_));
}

TEST_F(PostgresRegistryTest, Rejects_NulInAValue) {
  auto registry = OpenOrDie();
  ASSERT_NE(registry, nullptr);
  Enrollment e = conformance::MakeEnrollment(std::string("dev\0x", 5));
  auto put = registry->PutEnrollment(e, std::nullopt, actor_);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log"), 0);
}

}  // namespace
}  // namespace devid::registry
