// `devid device register --symmetric-key-file` (the device SDK's symmetric-key provisioning,
// protocol notes §1 and §2.2) against the real `devid serve`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "server_process.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// A 32-byte key, base64; the device key and the enrollment's primary key.
constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr char kOtherKey[] = "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpzs=";

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

TEST_F(DeviceRegisterCliTest, Rejects_BadArguments) {
  CommandResult both =
      Devid({"device", "register", "--tpm", "--symmetric-key", kDeviceKey, "--id-scope", "s",
             "--endpoint", "https://localhost:1", "--trust-bundle", server_->trust_bundle_file()});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_THAT(both.err, HasSubstr("choose one of --tpm, --symmetric-key"));
  CommandResult bad_id = Register("../other", KeyFile("device.key", kDeviceKey));
  EXPECT_EQ(bad_id.exit_code, 1);
  EXPECT_THAT(bad_id.err, HasSubstr("registration ID \"../other\" must be"));
  CommandResult not_base64 = Register("sdk-sym-3", KeyFile("bad.key", "not base64!"));
  EXPECT_EQ(not_base64.exit_code, 1);
  EXPECT_THAT(not_base64.err, HasSubstr("not base64"));
}

}  // namespace
}  // namespace devid::testing
