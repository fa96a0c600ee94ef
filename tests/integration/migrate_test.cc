// `devid migrate`: a single-node SQLite installation copied to PostgreSQL, then served from there.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "dps_client.h"
#include "pki/sas_token.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/postgres_registry.h"
#include "registry/postgres/testing/test_database.h"
#include "registry/sqlite/connection.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using registry::postgres::testing::TestDatabase;
using ::testing::HasSubstr;

constexpr char kGroupKey[] =
    "Zm9yIGRldmlkIG1pZ3JhdGUgdGVzdHMgb25seSwgbm90IGEgcmVhbCBncm91cCBrZXkgYXQgYWxsLi4uLi4=";
constexpr char kTables[][20] = {"enrollments",  "enrollment_groups",  "registrations", "settings",
                                "certificates", "revocation_version", "audit_log"};

std::map<std::string, int64_t> SqliteCounts(const std::string& path) {
  std::map<std::string, int64_t> counts;
  auto db = registry::sqlite::Connection::Open(path, registry::sqlite::ConnectionOptions{});
  EXPECT_TRUE(db.has_value()) << db.error().message();
  if (!db) return counts;
  for (const char* table : kTables) {
    auto stmt = db->Prepare(std::string("SELECT COUNT(*) FROM ") + table);
    EXPECT_TRUE(stmt.has_value()) << stmt.error().message();
    if (stmt && (*stmt)->Step().value_or(false)) counts[table] = (*stmt)->ColumnInt64(0);
  }
  return counts;
}

std::map<std::string, int64_t> PostgresCounts(const std::string& url) {
  std::map<std::string, int64_t> counts;
  auto db = registry::postgres::Connection::Open(url);
  EXPECT_TRUE(db.has_value()) << db.error().message();
  if (!db) return counts;
  for (const char* table : kTables) {
    auto rows = db->Run(std::string("SELECT COUNT(*) FROM ") + table, {});
    EXPECT_TRUE(rows.has_value()) << rows.error().message();
    if (rows) counts[table] = rows->Int(0, 0);
  }
  return counts;
}

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
  }

  CommandResult Migrate(const std::string& sqlite_path, bool force = false) {
    std::vector<std::string> argv = {DEVID_BINARY, "migrate", "--from", "sqlite://" + sqlite_path,
                                     "--to",       db_->url()};
    if (force) argv.push_back("--force");
    return RunCommand(argv);
  }

  std::optional<TestDatabase> db_;
};

TEST_F(MigrateTest, Copies_SqliteStoreThatPostgresNodeThenServes) {
  auto single = ServerProcess::Start();
  ASSERT_TRUE(single) << single.error().message();
  std::map<std::string, std::string> created;  // registration ID -> createdDateTimeUtc
  {
    DpsClient client(*single);
    ASSERT_TRUE(client.connected());
    auto group = client.Service(
        "PUT", "/enrollmentGroups/fleet",
        {{"enrollmentGroupId", "fleet"},
         {"attestation",
          {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", kGroupKey}}}}}});
    ASSERT_TRUE(group && group->status == 200) << (group ? group->body : group.error().message());
    for (int i = 0; i < 25; ++i) {
      std::string id = "dev-" + std::to_string(i);
      auto r = client.Register(id, *pki::DeriveSymmetricKey(kGroupKey, id));
      ASSERT_TRUE(r && r->status == 202) << (r ? r->body : r.error().message());
      auto state = client.Service("GET", "/registrations/" + id);
      ASSERT_TRUE(state && state->status == 200);
      created[id] = json::parse(state->body).value("createdDateTimeUtc", "");
    }
  }
  json single_connection = single->connection();
  std::string sqlite_path = single->data_dir() + "/devid.db";

  // The copy runs while the single node still serves (it copies one snapshot).
  CommandResult migrated = Migrate(sqlite_path);
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  EXPECT_THAT(migrated.out, HasSubstr("migrate: registrations: 25/25 rows"));
  EXPECT_THAT(migrated.out, HasSubstr("verified row counts"));
  ASSERT_TRUE(single->Stop());
  std::map<std::string, int64_t> source = SqliteCounts(sqlite_path);
  EXPECT_EQ(source["registrations"], 25);
  EXPECT_EQ(source["enrollment_groups"], 1);
  // The certificates the single node issued itself (its TLS certificate, ...), with their DER.
  EXPECT_GE(source["certificates"], 1);
  EXPECT_EQ(PostgresCounts(db_->url()), source);

  // A second copy onto the now non-empty target is refused and changes nothing...
  CommandResult refused = Migrate(sqlite_path);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("not empty"));
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_EQ(PostgresCounts(db_->url()), source);
  // ...unless forced, which replaces the contents rather than adding to them.
  CommandResult forced = Migrate(sqlite_path, /*force=*/true);
  ASSERT_EQ(forced.exit_code, 0) << forced.out << forced.err;
  EXPECT_EQ(PostgresCounts(db_->url()), source);

  // A node on PostgreSQL serves the copied installation: same ID scope and service keys (from
  // the store), the same group, and the devices' registrations with their created times.
  ServerProcessOptions options;
  options.config_toml = "[store]\nurl = \"" + db_->url() + "\"\n";
  auto node = ServerProcess::Start(options);
  ASSERT_TRUE(node) << node.error().message();
  EXPECT_EQ(node->id_scope(), single_connection["idScope"]);
  EXPECT_EQ(node->service_connection_string(), single_connection["serviceConnectionString"]);
  DpsClient client(*node);
  ASSERT_TRUE(client.connected());
  auto group = client.Service("GET", "/enrollmentGroups/fleet");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->status, 200) << group->body;
  std::string id = "dev-7";
  auto again = client.Register(id, *pki::DeriveSymmetricKey(kGroupKey, id));
  ASSERT_TRUE(again && again->status == 202) << (again ? again->body : again.error().message());
  auto state = client.Service("GET", "/registrations/" + id);
  ASSERT_TRUE(state && state->status == 200);
  EXPECT_EQ(json::parse(state->body).value("createdDateTimeUtc", ""), created[id]);

  // The audit log continues its copied sequence: the node's first start recorded the
  // certificates it issued itself (its data dir is new), then the device registered again. The
  // new serials did not collide with the copied ones.
  auto db = registry::postgres::Connection::Open(db_->url());
  ASSERT_TRUE(db.has_value());
  auto added = db->Run(
      "SELECT action, object FROM audit_log WHERE sequence > $1::bigint "
      "ORDER BY sequence",
      {std::to_string(source["audit_log"])});
  ASSERT_TRUE(added.has_value()) << added.error().message();
  ASSERT_GE(added->size(), 2);
  int last = added->size() - 1;
  for (int i = 0; i < last; ++i) EXPECT_EQ(added->Text(i, 0), "certificate.issue");
  EXPECT_EQ(added->Text(last, 0), "registration.assign");
  EXPECT_EQ(added->Text(last, 1), id);
  std::map<std::string, int64_t> target = PostgresCounts(db_->url());
  EXPECT_EQ(target["audit_log"], source["audit_log"] + added->size());
  EXPECT_EQ(target["certificates"], source["certificates"] + last);
}

// CertificateWithDer returns an issued inventory record whose DER holds every byte value.
registry::CertificateRecord CertificateWithDer(const std::string& serial, int64_t hours) {
  registry::CertificateRecord r;
  r.sha256_thumbprint = "SHA256-" + serial;
  r.sha1_thumbprint = "SHA1-" + serial;
  r.serial = serial;
  r.subject = "CN=dev-" + serial;
  r.issuer = "CN=devid Device CA";
  r.issuer_key_id = "a1b2";
  r.not_before = std::chrono::system_clock::now();
  r.not_after = r.not_before + std::chrono::hours(hours);
  r.device_id = "dev-" + serial;
  r.profile = "device-client";
  for (int b = 0; b < 256; ++b) r.der += static_cast<char>(b);
  r.der += serial + "\t\n\\";
  return r;
}

TEST_F(MigrateTest, Copies_CertificateInventoryWithItsDerAndRevocations) {
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("devid-migrate-" + SecureRandom().Hex(8));
  std::filesystem::create_directories(dir);
  std::string sqlite_path = (dir / "devid.db").string();
  SystemClock clock;
  SecureRandom random;
  registry::Actor actor{"cli"};
  std::vector<registry::CertificateRecord> source_records;
  {
    auto sqlite = registry::SqliteRegistry::Open(sqlite_path, clock, random);
    ASSERT_TRUE(sqlite.has_value()) << sqlite.error().message();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*sqlite)->RecordCertificate(CertificateWithDer("0" + std::to_string(i), 10 + i),
                                               registry::kAuditCertificateIssue, actor));
    }
    registry::CertificateRecord observed = CertificateWithDer("0F", 50);
    observed.issuer = "CN=Vendor";
    ASSERT_TRUE((*sqlite)->ObserveCertificate(observed));
    registry::CertificateFilter revoke;
    revoke.serial = "01";
    auto revoked = (*sqlite)->RevokeCertificates(revoke, 1, actor);
    ASSERT_TRUE(revoked.has_value()) << revoked.error().message();
    ASSERT_EQ(revoked->size(), 1u);
    auto all = (*sqlite)->QueryCertificates({}, registry::PageRequest{});
    ASSERT_TRUE(all.has_value()) << all.error().message();
    source_records = all->items;
  }
  ASSERT_EQ(source_records.size(), 4u);

  CommandResult migrated = Migrate(sqlite_path);
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  EXPECT_THAT(migrated.out, HasSubstr("migrate: certificates: 4/4 rows"));
  EXPECT_THAT(migrated.out, HasSubstr("certificates 4 = 4"));
  EXPECT_THAT(migrated.out, HasSubstr("revocation_version 1 = 1"));
  std::map<std::string, int64_t> source = SqliteCounts(sqlite_path);
  EXPECT_EQ(source["certificates"], 4);
  EXPECT_EQ(PostgresCounts(db_->url()), source);

  // A node on the target reads the same inventory, DER bytes and revocations included, and
  // continues the revocation version.
  auto pg = registry::PostgresRegistry::Open(db_->url(), clock, random);
  ASSERT_TRUE(pg.has_value()) << pg.error().message();
  auto copied = (*pg)->QueryCertificates({}, registry::PageRequest{});
  ASSERT_TRUE(copied.has_value()) << copied.error().message();
  ASSERT_EQ(copied->items.size(), source_records.size());
  for (size_t i = 0; i < source_records.size(); ++i) {
    const registry::CertificateRecord& a = source_records[i];
    const registry::CertificateRecord& b = copied->items[i];
    SCOPED_TRACE(a.serial);
    EXPECT_EQ(b.sha256_thumbprint, a.sha256_thumbprint);
    EXPECT_EQ(b.serial, a.serial);
    EXPECT_EQ(b.issuer, a.issuer);
    EXPECT_EQ(b.der, a.der);
    EXPECT_EQ(b.source, a.source);
    EXPECT_EQ(b.revoked, a.revoked);
    EXPECT_EQ(b.revocation_reason, a.revocation_reason);
    EXPECT_EQ(b.revoked_at, a.revoked_at);
    EXPECT_EQ(b.not_after, a.not_after);
    EXPECT_EQ(b.last_seen, a.last_seen);
  }
  auto version = (*pg)->RevocationVersion();
  ASSERT_TRUE(version.has_value()) << version.error().message();
  EXPECT_EQ(*version, 1);
  // The copied (issuer, serial) pairs stay taken on the target.
  auto duplicate = (*pg)->RecordCertificate(CertificateWithDer("00", 1),
                                            registry::kAuditCertificateIssue, actor);
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code(), ErrorCode::kAlreadyExists);
  registry::CertificateFilter revoke;
  revoke.serial = "02";
  ASSERT_TRUE((*pg)->RevokeCertificates(revoke, 4, actor).has_value());
  EXPECT_EQ(*(*pg)->RevocationVersion(), 2);
  std::filesystem::remove_all(dir);
}

TEST_F(MigrateTest, Rejects_MissingSourceAndWrongSchemes) {
  CommandResult missing = Migrate("/nonexistent/devid.db");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no database file at /nonexistent/devid.db"));

  CommandResult wrong =
      RunCommand({DEVID_BINARY, "migrate", "--from", "postgresql://x/y", "--to", db_->url()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("--from must be a sqlite:// URL"));
}

}  // namespace
}  // namespace devid::testing
