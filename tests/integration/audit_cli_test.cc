// `devid audit verify` on a real server's store: an intact chain after writes through the service
// API, the first tampered record named after an edit in SQL, and a missing store refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "est_client.h"
#include "registry/sqlite/connection.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kDeviceKey[] = "c3ltbWV0cmljLWtleS1mb3ItYXVkaXQtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==";

class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_.emplace(std::move(*server));
    for (const char* id : {"audit-1", "audit-2", "audit-3"}) {
      CommandResult added = AddSasEnrollment(*server_, id, kDeviceKey);
      ASSERT_EQ(added.exit_code, 0) << Describe(added);
    }
  }

  CommandResult Verify(const std::string& data_dir) {
    return RunCommand({DEVID_BINARY, "audit", "verify", "--data-dir", data_dir});
  }

  // Sql runs statements on the server's SQLite store, as someone with the file would.
  void Sql(const std::string& sql) {
    auto db = registry::sqlite::Connection::Open(server_->data_dir() + "/devid.db",
                                                 registry::sqlite::ConnectionOptions());
    ASSERT_TRUE(db.has_value()) << db.error().message();
    auto done = db->Exec(sql);
    ASSERT_TRUE(done.has_value()) << done.error().message();
  }

  int64_t QueryInt(const std::string& sql) {
    auto db = registry::sqlite::Connection::Open(server_->data_dir() + "/devid.db",
                                                 registry::sqlite::ConnectionOptions());
    if (!db) return -1;
    auto stmt = db->Prepare(sql);
    if (!stmt) return -1;
    auto row = (*stmt)->Step();
    return row && *row ? (*stmt)->ColumnInt64(0) : -1;
  }

  std::optional<ServerProcess> server_;
};

TEST_F(AuditCliTest, Verifies_IntactChainAndPrintsItsHead) {
  int64_t records = QueryInt("SELECT COUNT(*) FROM audit_log");
  ASSERT_GE(records, 3);
  CommandResult verified = Verify(server_->data_dir());
  ASSERT_EQ(verified.exit_code, 0) << Describe(verified);
  EXPECT_THAT(verified.out,
              HasSubstr("audit log verified: " + std::to_string(records) + " records\n"));
  EXPECT_THAT(verified.out, HasSubstr("head: sequence " +
                                          std::to_string(QueryInt("SELECT MAX(sequence) FROM "
                                                                  "audit_log")) +
                                          " hash "));
}

TEST_F(AuditCliTest, Names_RecordChangedInSql) {
  int64_t second = QueryInt(
      "SELECT sequence FROM audit_log WHERE action = 'enrollment.create' AND object = 'audit-2'");
  ASSERT_GT(second, 0);
  Sql("UPDATE audit_log SET object = 'audit-9' WHERE sequence = " + std::to_string(second));
  int64_t records = QueryInt("SELECT COUNT(*) FROM audit_log");
  CommandResult verified = Verify(server_->data_dir());
  EXPECT_EQ(verified.exit_code, 1) << Describe(verified);
  EXPECT_THAT(verified.err, HasSubstr("the audit log is broken at sequence " +
                                          std::to_string(second) + ": "));
  EXPECT_EQ(verified.out, "");
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log"), records);  // verify writes nothing
}

TEST_F(AuditCliTest, Names_RecordAfterOneDeletedInSql) {
  int64_t second = QueryInt(
      "SELECT sequence FROM audit_log WHERE action = 'enrollment.create' AND object = 'audit-2'");
  int64_t third = QueryInt(
      "SELECT sequence FROM audit_log WHERE action = 'enrollment.create' AND object = 'audit-3'");
  ASSERT_GT(second, 0);
  Sql("DELETE FROM audit_log WHERE sequence = " + std::to_string(second));
  CommandResult verified = Verify(server_->data_dir());
  EXPECT_EQ(verified.exit_code, 1) << Describe(verified);
  EXPECT_THAT(verified.err, HasSubstr("broken at sequence " + std::to_string(third) + ": "));
}

TEST_F(AuditCliTest, Refuses_DataDirWithoutStore) {
  std::string missing = server_->root() + "/no-such-dir";
  CommandResult verified = Verify(missing);
  EXPECT_EQ(verified.exit_code, 1) << Describe(verified);
  EXPECT_THAT(verified.err, HasSubstr("no store at " + missing + "/devid.db"));
  EXPECT_FALSE(std::filesystem::exists(missing));
}

}  // namespace
}  // namespace devid::testing
