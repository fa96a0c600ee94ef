// The operator CLI (`devid enrollment|group|registration|keys`) against a real `devid serve`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "sdk/https_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Protocol notes §2.3 test vector.
constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";
constexpr char kGroupDeviceId[] = "sym-grp-dev-7";
constexpr char kDerivedKey[] = "QHNXCHA0Z8gY8OrUtr6oAXJs55pPllbo1jyAqYJDIiY=";

// ParseJson parses a command's stdout, recording a failure when it is not JSON.
json ParseJson(const CommandResult& r) {
  json parsed = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "stdout is not JSON: " << Describe(r);
  return parsed.is_discarded() ? json() : parsed;
}

std::set<std::string> Ids(const json& items, const char* field) {
  std::set<std::string> ids;
  for (const auto& item : items) ids.insert(item.value(field, ""));
  return ids;
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = ServerProcess::Start();
    if (!started) {
      std::cerr << started.error().message() << "\n";
      return;
    }
    server_ = new ServerProcess(std::move(*started));
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(server_, nullptr) << "devid serve did not start"; }

  void TearDown() override {
    if (HasFailure() && server_ != nullptr) {
      std::cerr << "---- devid serve log ----\n" << server_->log() << "---- end ----\n";
    }
  }

  // Devid runs the CLI with args, then --connection naming the shared server's file.
  static CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.end(), {"--connection", server_->connection_file()});
    return Offline(std::move(args));
  }

  // Offline runs the CLI with exactly args.
  static CommandResult Offline(std::vector<std::string> args,
                               const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args, env);
  }

  // RegisterDevice registers a device over the device API with a DPS SAS token (protocol notes
  // §1, §2.2), returning the HTTP status.
  static int RegisterDevice(const std::string& registration_id, const std::string& key) {
    sdk::ClientTlsOptions tls;
    tls.trust_bundle_pem = server_->trust_bundle_pem();
    tls.server_name = "localhost";
    auto client = sdk::HttpsClient::Connect("127.0.0.1", server_->port(), tls);
    EXPECT_TRUE(client) << client.error().message();
    if (!client) return 0;
    auto key_bytes = ossl::Base64Decode(key);
    EXPECT_TRUE(key_bytes);
    if (!key_bytes) return 0;
    std::string resource = server_->id_scope() + "/registrations/" + registration_id;
    std::string token = pki::CreateSasToken(*key_bytes, resource,
                                            SystemClock().UnixSeconds() + 3600, "registration");
    auto response = client->Send("PUT", "/" + resource + "/register?api-version=2021-06-01",
                                 {{"authorization", token}, {"content-type", "application/json"}},
                                 json{{"registrationId", registration_id}}.dump());
    EXPECT_TRUE(response) << response.error().message();
    return response ? response->status : 0;
  }

  static ServerProcess* server_;
};

ServerProcess* CliTest::server_ = nullptr;

TEST_F(CliTest, EnrollmentLifecycle_AddShowListDisableEnableDelete) {
  CommandResult added = Devid({"enrollment", "add", "--registration-id", "life-1", "-o", "json"});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  json enrollment = ParseJson(added);
  EXPECT_EQ(enrollment.value("registrationId", ""), "life-1");
  EXPECT_EQ(enrollment.value("provisioningStatus", ""), "enabled");
  std::string primary = enrollment["attestation"]["symmetricKey"].value("primaryKey", "");
  std::string secondary = enrollment["attestation"]["symmetricKey"].value("secondaryKey", "");
  auto primary_bytes = ossl::Base64Decode(primary);
  ASSERT_TRUE(primary_bytes) << "generated primary key is not base64: " << primary;
  EXPECT_EQ(primary_bytes->size(), 64u);
  EXPECT_FALSE(secondary.empty());
  EXPECT_NE(primary, secondary);

  CommandResult shown = Devid({"enrollment", "show", "life-1"});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("life-1"));
  EXPECT_THAT(shown.out, HasSubstr(primary));
  EXPECT_THAT(shown.out, HasSubstr("enabled"));

  for (const char* id : {"life-2", "life-3", "life-4", "life-5"}) {
    CommandResult more = Devid({"enrollment", "add", "--registration-id", id});
    ASSERT_EQ(more.exit_code, 0) << Describe(more);
  }
  // Five or more enrollments in pages of two: only following x-ms-continuation finds them all.
  CommandResult listed = Devid({"enrollment", "list", "--page-size", "2", "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  json items = ParseJson(listed);
  ASSERT_TRUE(items.is_array());
  std::set<std::string> ids = Ids(items, "registrationId");
  for (const char* id : {"life-1", "life-2", "life-3", "life-4", "life-5"}) {
    EXPECT_TRUE(ids.contains(id)) << id << " missing from " << listed.out;
  }
  EXPECT_EQ(ids.size(), items.size()) << "an item was listed twice";

  CommandResult disabled = Devid({"enrollment", "disable", "life-1"});
  ASSERT_EQ(disabled.exit_code, 0) << Describe(disabled);
  EXPECT_THAT(disabled.out, HasSubstr("disabled"));
  EXPECT_THAT(disabled.out, Not(HasSubstr(primary)));
  shown = Devid({"enrollment", "show", "life-1", "-o", "json"});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  json after_disable = ParseJson(shown);
  EXPECT_EQ(after_disable.value("provisioningStatus", ""), "disabled");
  EXPECT_EQ(after_disable["attestation"]["symmetricKey"].value("primaryKey", ""), primary)
      << "disabling must keep the keys";
  EXPECT_NE(after_disable.value("etag", ""), enrollment.value("etag", ""));
  shown = Devid({"enrollment", "show", "life-1"});
  EXPECT_THAT(shown.out, HasSubstr("disabled"));

  CommandResult enabled = Devid({"enrollment", "enable", "life-1", "-o", "json"});
  ASSERT_EQ(enabled.exit_code, 0) << Describe(enabled);
  EXPECT_EQ(ParseJson(enabled).value("provisioningStatus", ""), "enabled");

  CommandResult deleted = Devid({"enrollment", "delete", "life-1"});
  ASSERT_EQ(deleted.exit_code, 0) << Describe(deleted);
  CommandResult missing = Devid({"enrollment", "show", "life-1"});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_TRUE(missing.out.empty()) << Describe(missing);
  EXPECT_THAT(missing.err, HasSubstr("devid: "));
  EXPECT_THAT(missing.err, HasSubstr("life-1"));
  EXPECT_THAT(missing.err, HasSubstr("NotFound"));
}

TEST_F(CliTest, EnrollmentAdd_SendsGivenKeysAndSettings) {
  std::string primary = ossl::Base64Encode(std::string(32, 'p'));
  std::string secondary = ossl::Base64Encode(std::string(32, 's'));
  CommandResult added = Devid({"enrollment",
                               "add",
                               "--registration-id",
                               "set-1",
                               "--device-id",
                               "set-device-1",
                               "--primary-key",
                               primary,
                               "--secondary-key",
                               secondary,
                               "--disabled",
                               "--hub",
                               "hub-a.example",
                               "--hub",
                               "hub-b.example",
                               "--allocation",
                               "static",
                               "--initial-twin",
                               R"({"tags":{"site":"lab"}})",
                               "--output",
                               "json"});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  json e = ParseJson(added);
  EXPECT_EQ(e.value("deviceId", ""), "set-device-1");
  EXPECT_EQ(e["attestation"]["symmetricKey"].value("primaryKey", ""), primary);
  EXPECT_EQ(e["attestation"]["symmetricKey"].value("secondaryKey", ""), secondary);
  EXPECT_EQ(e.value("provisioningStatus", ""), "disabled");
  EXPECT_EQ(e.value("allocationPolicy", ""), "static");
  EXPECT_EQ(e["iotHubs"], json({"hub-a.example", "hub-b.example"}));
  EXPECT_EQ(e["initialTwin"]["tags"].value("site", ""), "lab");

  CommandResult shown = Devid({"enrollment", "show", "set-1"});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("set-device-1"));
  EXPECT_THAT(shown.out, HasSubstr("hub-a.example,hub-b.example"));
}

TEST_F(CliTest, EnrollmentAdd_RefusesAnExistingIdAndKeepsItsKeys) {
  CommandResult first = Devid({"enrollment", "add", "--registration-id", "dup-1", "-o", "json"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  CommandResult second = Devid({"enrollment", "add", "--registration-id", "dup-1"});
  EXPECT_EQ(second.exit_code, 1) << Describe(second);
  EXPECT_THAT(second.err, HasSubstr("already exists"));
  CommandResult shown = Devid({"enrollment", "show", "dup-1", "-o", "json"});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_EQ(ParseJson(shown)["attestation"], ParseJson(first)["attestation"]);
}

TEST_F(CliTest, EnrollmentAdd_RejectsInvalidInputWithTheServersMessage) {
  CommandResult bad_twin =
      Devid({"enrollment", "add", "--registration-id", "bad-1", "--initial-twin", "{not json"});
  EXPECT_EQ(bad_twin.exit_code, 1) << Describe(bad_twin);
  EXPECT_THAT(bad_twin.err, HasSubstr("--initial-twin"));

  CommandResult bad_key =
      Devid({"enrollment", "add", "--registration-id", "bad-2", "--primary-key", "not base64!"});
  EXPECT_EQ(bad_key.exit_code, 1) << Describe(bad_key);
  EXPECT_THAT(bad_key.err, HasSubstr("primaryKey"));
  EXPECT_THAT(bad_key.err, HasSubstr("InvalidField"));
}

TEST_F(CliTest, EnrollmentList_TableHasColumnsAndNoKeys) {
  CommandResult added = Devid({"enrollment", "add", "--registration-id", "tbl-1", "--device-id",
                               "tbl-device", "--hub", "hub-t.example", "-o", "json"});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  json e = ParseJson(added);
  CommandResult listed = Devid({"enrollment", "list"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  std::string header = listed.out.substr(0, listed.out.find('\n'));
  for (const char* column :
       {"REGISTRATION ID", "DEVICE ID", "ATTESTATION", "STATUS", "HUBS", "ETAG"}) {
    EXPECT_THAT(header, HasSubstr(column));
  }
  EXPECT_THAT(listed.out, HasSubstr("tbl-device"));
  EXPECT_THAT(listed.out, HasSubstr("hub-t.example"));
  EXPECT_THAT(listed.out, HasSubstr(e.value("etag", "")));
  EXPECT_THAT(listed.out, Not(HasSubstr(e["attestation"]["symmetricKey"].value("primaryKey", ""))));
  EXPECT_THAT(listed.out,
              Not(HasSubstr(e["attestation"]["symmetricKey"].value("secondaryKey", ""))));
}

TEST_F(CliTest, Group_AddListDisableDelete) {
  CommandResult added = Devid({"group", "add", "--group-id", "grp-1", "--registration-id-prefix",
                               "grp1-", "--hub", "hub-g.example", "-o", "json"});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  json g = ParseJson(added);
  EXPECT_EQ(g.value("enrollmentGroupId", ""), "grp-1");
  EXPECT_EQ(g.value("registrationIdPrefix", ""), "grp1-");
  std::string primary = g["attestation"]["symmetricKey"].value("primaryKey", "");
  EXPECT_TRUE(ossl::Base64Decode(primary)) << primary;

  CommandResult listed = Devid({"group", "list"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr("GROUP ID"));
  EXPECT_THAT(listed.out, HasSubstr("grp-1"));
  EXPECT_THAT(listed.out, HasSubstr("grp1-"));
  EXPECT_THAT(listed.out, Not(HasSubstr(primary)));
  CommandResult listed_json = Devid({"group", "list", "--page-size", "1", "-o", "json"});
  ASSERT_EQ(listed_json.exit_code, 0) << Describe(listed_json);
  EXPECT_TRUE(Ids(ParseJson(listed_json), "enrollmentGroupId").contains("grp-1"));

  CommandResult disabled = Devid({"group", "disable", "grp-1", "-o", "json"});
  ASSERT_EQ(disabled.exit_code, 0) << Describe(disabled);
  EXPECT_EQ(ParseJson(disabled).value("provisioningStatus", ""), "disabled");

  CommandResult deleted = Devid({"group", "delete", "grp-1"});
  ASSERT_EQ(deleted.exit_code, 0) << Describe(deleted);
  listed_json = Devid({"group", "list", "-o", "json"});
  ASSERT_EQ(listed_json.exit_code, 0) << Describe(listed_json);
  EXPECT_FALSE(Ids(ParseJson(listed_json), "enrollmentGroupId").contains("grp-1"));
  CommandResult missing = Devid({"group", "show", "grp-1"});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_THAT(missing.err, HasSubstr("NotFound"));
}

TEST_F(CliTest, Registration_ShowListDeleteForADeviceOfAGroup) {
  CommandResult group = Devid({"group", "add", "--group-id", "reg-grp", "--primary-key", kGroupKey,
                               "--hub", "hub-r.example"});
  ASSERT_EQ(group.exit_code, 0) << Describe(group);
  CommandResult derived =
      Offline({"keys", "derive", "--group-key", kGroupKey, "--registration-id", kGroupDeviceId});
  ASSERT_EQ(derived.exit_code, 0) << Describe(derived);
  std::string device_key = derived.out.substr(0, derived.out.find('\n'));
  ASSERT_EQ(RegisterDevice(kGroupDeviceId, device_key), 202);

  CommandResult listed = Devid({"registration", "list", "--group-id", "reg-grp", "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  json items = ParseJson(listed);
  ASSERT_EQ(items.size(), 1u) << listed.out;
  EXPECT_EQ(items[0].value("registrationId", ""), kGroupDeviceId);
  EXPECT_EQ(items[0].value("assignedHub", ""), "hub-r.example");
  CommandResult table = Devid({"registration", "list", "--group-id", "reg-grp"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr(kGroupDeviceId));
  EXPECT_THAT(table.out, HasSubstr("assigned"));

  CommandResult shown = Devid({"registration", "show", kGroupDeviceId});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("hub-r.example"));
  EXPECT_THAT(shown.out, HasSubstr("reg-grp"));
  shown = Devid({"registration", "show", kGroupDeviceId, "-o", "json"});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_EQ(ParseJson(shown).value("status", ""), "assigned");

  CommandResult deleted = Devid({"registration", "delete", kGroupDeviceId});
  ASSERT_EQ(deleted.exit_code, 0) << Describe(deleted);
  CommandResult missing = Devid({"registration", "show", kGroupDeviceId});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_THAT(missing.err, HasSubstr("NotFound"));
}

TEST_F(CliTest, KeysDerive_MatchesTheProtocolVectorOffline) {
  CommandResult derived =
      Offline({"keys", "derive", "--group-key", kGroupKey, "--registration-id", kGroupDeviceId});
  ASSERT_EQ(derived.exit_code, 0) << Describe(derived);
  EXPECT_EQ(derived.out, std::string(kDerivedKey) + "\n");

  CommandResult as_json = Offline({"keys", "derive", "--group-key", kGroupKey, "--registration-id",
                                   kGroupDeviceId, "--output", "json"});
  ASSERT_EQ(as_json.exit_code, 0) << Describe(as_json);
  EXPECT_EQ(ParseJson(as_json).value("derivedKey", ""), kDerivedKey);

  CommandResult bad = Offline(
      {"keys", "derive", "--group-key", "not base64!", "--registration-id", kGroupDeviceId});
  EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("devid: "));
  EXPECT_THAT(bad.err, HasSubstr("base64"));
}

TEST_F(CliTest, ConnectionString_WithAWrongKeyFailsUnauthorized) {
  std::string wrong =
      "HostName=localhost;SharedAccessKeyName=provisioningserviceowner;"
      "SharedAccessKey=" +
      ossl::Base64Encode(std::string(32, 'x'));
  CommandResult r =
      Offline({"enrollment", "list", "--connection-string", wrong, "--endpoint",
               server_->service_endpoint(), "--trust-bundle", server_->trust_bundle_file()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("Unauthorized"));
  EXPECT_THAT(r.err, Not(HasSubstr(ossl::Base64Encode(std::string(32, 'x')))));
}

TEST_F(CliTest, ConnectionFlags_WorkWithoutAConnectionFile) {
  CommandResult r = Offline({"enrollment", "list", "--connection", server_->root() + "/absent",
                             "--connection-string", server_->service_connection_string(),
                             "--endpoint", server_->service_endpoint(), "--trust-bundle",
                             server_->trust_bundle_file(), "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(ParseJson(r).is_array());
}

TEST_F(CliTest, ConnectionFile_ComesFromTheEnvironment) {
  CommandResult r =
      Offline({"group", "list", "-o", "json"}, {"DEVID_CONNECTION=" + server_->connection_file()});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(ParseJson(r).is_array());
}

TEST_F(CliTest, ConnectionFile_MissingFailsNamingIt) {
  std::string absent = server_->root() + "/no-such-connection.json";
  CommandResult r = Offline({"enrollment", "list", "--connection", absent});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("devid: "));
  EXPECT_THAT(r.err, HasSubstr(absent));
}

TEST_F(CliTest, TrustBundle_WithoutTheServersCaFailsTheHandshake) {
  // Any CA but the server's: the connection must be refused, never silently trusted.
  auto other = ServerProcess::Start();
  ASSERT_TRUE(other) << other.error().message();
  CommandResult r = Offline(
      {"enrollment", "list", "--connection-string", server_->service_connection_string(),
       "--endpoint", server_->service_endpoint(), "--trust-bundle", other->trust_bundle_file()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("connecting to https://localhost:"));
}

TEST(ServerProcessTest, Restart_KeepsTheDataAndThePort) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  std::vector<std::string> add = {DEVID_BINARY,
                                  "enrollment",
                                  "add",
                                  "--registration-id",
                                  "kept-1",
                                  "--connection",
                                  server->connection_file()};
  CommandResult added = RunCommand(add);
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  uint16_t port = server->port();
  std::string scope = server->id_scope();

  auto restarted = server->Restart();
  ASSERT_TRUE(restarted) << restarted.error().message();
  EXPECT_EQ(server->port(), port);
  EXPECT_EQ(server->id_scope(), scope);
  CommandResult shown = RunCommand(
      {DEVID_BINARY, "enrollment", "show", "kept-1", "--connection", server->connection_file()});
  EXPECT_EQ(shown.exit_code, 0) << Describe(shown);

  auto stopped = server->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();
  EXPECT_EQ(*stopped, 0) << server->log();
  EXPECT_FALSE(server->running());
}

}  // namespace
}  // namespace devid::testing
