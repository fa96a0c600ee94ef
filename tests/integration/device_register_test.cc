// `devid device register --symmetric-key-file` (the device SDK's symmetric-key provisioning,
// protocol notes §1 and §2.2) against the real `devid serve`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "dps_client.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// A 32-byte key, base64; the device key and the enrollment's primary key.
constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr char kOtherKey[] = "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpzs=";
constexpr char kRolledKey[] = "q1TxbpnA0s3qF2cY6mXqB3mHf4ohPZy9VgCqzHc1uIM=";

class DeviceRegisterCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args);
  }

  // KeyFile writes key to a file only the test can read and returns its path.
  std::string KeyFile(const std::string& name, const std::string& key) {
    std::string path = server_->root() + "/" + name;
    std::ofstream(path) << key << "\n";
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
  }

  CommandResult Register(const std::string& reg_id, const std::string& key_file) {
    return Devid({"device", "register", "--symmetric-key-file", key_file, "--registration-id",
                  reg_id, "--id-scope", server_->id_scope(), "--endpoint",
                  server_->device_endpoint(), "--trust-bundle", server_->trust_bundle_file(), "-o",
                  "json"});
  }

  CommandResult ShowRegistration(const std::string& reg_id) {
    return Devid(
        {"registration", "show", reg_id, "-o", "json", "--connection", server_->connection_file()});
  }

  std::optional<ServerProcess> server_;
};

TEST_F(DeviceRegisterCliTest, RegistersWithSymmetricKey) {
  CommandResult enrolled =
      Devid({"enrollment", "add", "--registration-id", "sdk-sym-1", "--primary-key", kDeviceKey,
             "--connection", server_->connection_file()});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
  CommandResult r = Register("sdk-sym-1", KeyFile("device.key", kDeviceKey));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json assignment = json::parse(r.out);
  EXPECT_EQ(assignment["registrationId"], "sdk-sym-1");
  EXPECT_EQ(assignment["deviceId"], "sdk-sym-1");
  EXPECT_FALSE(assignment["assignedHub"].get<std::string>().empty());
  EXPECT_EQ(assignment["substatus"], "initialAssignment");
  // The key never appears in what the command prints.
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kDeviceKey)));
}

TEST_F(DeviceRegisterCliTest, Rejects_WrongKey_StoresNothing) {
  ASSERT_EQ(Devid({"enrollment", "add", "--registration-id", "sdk-sym-2", "--primary-key",
                   kDeviceKey, "--connection", server_->connection_file()})
                .exit_code,
            0);
  CommandResult r = Register("sdk-sym-2", KeyFile("other.key", kOtherKey));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("HTTP 401"));
  EXPECT_THAT(r.err, HasSubstr("SAS token signature does not verify"));
  EXPECT_THAT(r.err, Not(HasSubstr(kOtherKey)));
  CommandResult stored = ShowRegistration("sdk-sym-2");
  EXPECT_EQ(stored.exit_code, 1) << Describe(stored);
}

TEST_F(DeviceRegisterCliTest, Rejects_DisabledEnrollment_StoresNothing) {
  ASSERT_EQ(Devid({"enrollment", "add", "--registration-id", "sdk-sym-4", "--primary-key",
                   kDeviceKey, "--disabled", "--connection", server_->connection_file()})
                .exit_code,
            0);
  CommandResult r = Register("sdk-sym-4", KeyFile("device.key", kDeviceKey));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("registering sdk-sym-4: "));
  EXPECT_THAT(r.err, HasSubstr("disabled"));
  CommandResult stored = ShowRegistration("sdk-sym-4");
  EXPECT_EQ(stored.exit_code, 1) << Describe(stored);
}

// The operator rolled the enrollment's primary key; the device still holds the old primary and
// the secondary, and rolls over to the secondary.
TEST_F(DeviceRegisterCliTest, RollsOverToSecondaryKey_WhenPrimaryIsRejected) {
  ASSERT_EQ(Devid({"enrollment", "add", "--registration-id", "sdk-roll-1", "--primary-key",
                   kRolledKey, "--secondary-key", kDeviceKey, "--connection",
                   server_->connection_file()})
                .exit_code,
            0);
  std::vector<std::string> args = {"device", "register", "--registration-id", "sdk-roll-1",
                                   "--symmetric-key-file", KeyFile("old.key", kOtherKey),
                                   "--secondary-key-file", KeyFile("secondary.key", kDeviceKey),
                                   "--id-scope", server_->id_scope(), "--endpoint",
                                   server_->device_endpoint(), "--trust-bundle",
                                   server_->trust_bundle_file(), "-o", "json"};
  CommandResult r = Devid(args);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(json::parse(r.out)["deviceId"], "sdk-roll-1");
  EXPECT_THAT(r.err, HasSubstr("rejected the primary key and accepted the secondary one"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kDeviceKey)));
  EXPECT_EQ(ShowRegistration("sdk-roll-1").exit_code, 0);

  // Neither key valid: both refusals are reported and nothing is stored.
  ASSERT_EQ(Devid({"enrollment", "add", "--registration-id", "sdk-roll-2", "--primary-key",
                   kRolledKey, "--connection", server_->connection_file()})
                .exit_code,
            0);
  args[3] = "sdk-roll-2";
  CommandResult refused = Devid(args);
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("the primary key was rejected"));
  EXPECT_THAT(refused.err, HasSubstr("with the secondary key"));
  EXPECT_EQ(ShowRegistration("sdk-roll-2").exit_code, 1);
}

// The operator moves the enrollment to another hub; the device, refused by its old hub, registers
// again and is told it moved (its reprovisioning policy lets the hub change).
TEST(DeviceReprovisionCliTest, RegisterAgain_ReportsAndSavesTheNewHub) {
  auto started = ServerProcess::Start(
      {.config_toml = "[device]\nhubs = [\"hub-a.example\", \"hub-b.example\"]\n"});
  ASSERT_TRUE(started) << started.error().message();
  ServerProcess& server = *started;
  auto devid = [](std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args);
  };
  ASSERT_EQ(devid({"enrollment", "add", "--registration-id", "sdk-move-1", "--primary-key",
                   kDeviceKey, "--hub", "hub-a.example", "--connection",
                   server.connection_file()})
                .exit_code,
            0);
  std::string key_file = server.root() + "/device.key";
  std::ofstream(key_file) << kDeviceKey << "\n";
  std::string state_file = server.root() + "/state.json";
  std::vector<std::string> reg = {"device", "register", "--registration-id", "sdk-move-1",
                                  "--symmetric-key-file", key_file, "--state", state_file,
                                  "--id-scope", server.id_scope(), "--endpoint",
                                  server.device_endpoint(), "--trust-bundle",
                                  server.trust_bundle_file(), "-o", "json"};
  CommandResult first = devid(reg);
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  EXPECT_EQ(json::parse(first.out)["assignedHub"], "hub-a.example");
  EXPECT_THAT(first.err, Not(HasSubstr("moved")));

  DpsClient service(server);
  ASSERT_TRUE(service.connected());
  auto updated = service.Service(
      "PUT", "/enrollments/sdk-move-1",
      {{"registrationId", "sdk-move-1"},
       {"attestation",
        {{"type", "symmetricKey"},
         {"symmetricKey", {{"primaryKey", kDeviceKey}, {"secondaryKey", kOtherKey}}}}},
       {"iotHubs", {"hub-b.example"}},
       {"reprovisionPolicy", {{"updateHubAssignment", true}, {"migrateDeviceData", true}}}},
      {{"if-match", "*"}});
  ASSERT_TRUE(updated) << updated.error().message();
  ASSERT_EQ(updated->status, 200) << updated->body;

  CommandResult again = devid(reg);
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(json::parse(again.out)["assignedHub"], "hub-b.example");
  EXPECT_THAT(again.err, HasSubstr("moved this device from hub hub-a.example to hub "
                                   "hub-b.example"));
  std::ifstream saved(state_file);
  EXPECT_EQ(json::parse(saved)["assignedHub"], "hub-b.example");
}

TEST_F(DeviceRegisterCliTest, Rejects_BadArguments) {
  CommandResult both =
      Devid({"device", "register", "--tpm", "--symmetric-key", kDeviceKey, "--id-scope", "s",
             "--endpoint", "https://localhost:1", "--trust-bundle", server_->trust_bundle_file()});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_THAT(both.err, HasSubstr("choose one of --tpm, --x509, --symmetric-key"));
  CommandResult bad_id = Register("../other", KeyFile("device.key", kDeviceKey));
  EXPECT_EQ(bad_id.exit_code, 1);
  EXPECT_THAT(bad_id.err, HasSubstr("registration ID \"../other\" must be"));
  CommandResult not_base64 = Register("sdk-sym-3", KeyFile("bad.key", "not base64!"));
  EXPECT_EQ(not_base64.exit_code, 1);
  EXPECT_THAT(not_base64.err, HasSubstr("not base64"));
}

}  // namespace
}  // namespace devid::testing
