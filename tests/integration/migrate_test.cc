// `devid migrate`: a single-node SQLite installation copied to PostgreSQL, then served from there.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dps_client.h"
#include "pki/sas_token.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/testing/test_database.h"
#include "registry/sqlite/connection.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using registry::postgres::testing::MissingServerIsFailure;
using registry::postgres::testing::MissingServerMessage;
using registry::postgres::testing::TestDatabase;
using registry::postgres::testing::TestServerUrl;
using ::testing::HasSubstr;

constexpr char kGroupKey[] =
    "Zm9yIGRldmlkIG1pZ3JhdGUgdGVzdHMgb25seSwgbm90IGEgcmVhbCBncm91cCBrZXkgYXQgYWxsLi4uLi4=";
constexpr char kTables[][20] = {"enrollments", "enrollment_groups", "registrations", "settings",
                                "audit_log"};

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
    if (TestServerUrl().empty()) {
      if (MissingServerIsFailure()) FAIL() << MissingServerMessage();
      GTEST_SKIP() << MissingServerMessage();
    }
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.has_value()) << db.error().message();
    db_.emplace(std::move(*db));
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

  // The audit log continues its copied sequence.
  auto db = registry::postgres::Connection::Open(db_->url());
  ASSERT_TRUE(db.has_value());
  auto last = db->Run("SELECT object FROM audit_log ORDER BY sequence DESC LIMIT 1", {});
  ASSERT_TRUE(last.has_value()) << last.error().message();
  EXPECT_EQ(last->Text(0, 0), id);
  EXPECT_EQ(PostgresCounts(db_->url())["audit_log"], source["audit_log"] + 1);
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
