// A device whose SAS key lives in a SoftHSM2 token, end to end through the real binaries:
// `devid device key import-symmetric` stores the enrollment's key in the token, the key file is
// deleted, and `devid device register --pkcs11` registers with SAS tokens signed inside the token
// (CKM_SHA256_HMAC) against `devid serve`. `pkcs11-tool` shows the key sensitive and not
// extractable and cannot read it. Each refusal (wrong PIN, missing token, missing key, a token key
// that is not the enrollment's, an import over an existing key) says what to check and leaves the
// registry without a registration.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keys/testing/softhsm_token.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// 32-byte keys, base64: the enrollment's primary key and another one.
constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr char kOtherKey[] = "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpzs=";

class DeviceSasHsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(token_.ok()) << token_.init_output();
    env_ = {"SOFTHSM2_CONF=" + token_.dir() + "/softhsm2.conf"};
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args, env_);
  }

  // Uri names object on the test token with its PIN in pin_file (default: the right PIN).
  std::string Uri(const std::string& object, const std::string& pin_file = "",
                  const std::string& token_label = SoftHsmToken::kLabel) const {
    return "pkcs11:token=" + token_label + ";object=" + object +
           "?pin-source=" + (pin_file.empty() ? token_.pin_file() : pin_file);
  }

  // SecretFile writes text to a file only the test can read and returns its path.
  std::string SecretFile(const std::string& name, const std::string& text) {
    std::string path = server_->root() + "/" + name;
    std::ofstream(path) << text << "\n";
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
  }

  void Enroll(const std::string& reg_id) {
    CommandResult added = Devid({"enrollment", "add", "--registration-id", reg_id, "--primary-key",
                                 kDeviceKey, "--connection", server_->connection_file()});
    ASSERT_EQ(added.exit_code, 0) << Describe(added);
  }

  // Import stores key in the token at object through a key file, deleted afterwards.
  CommandResult Import(const std::string& object, const std::string& key) {
    std::string file = SecretFile("import.key", key);
    CommandResult r =
        Devid({"device", "key", "import-symmetric", "--key", Uri(object), "--pkcs11-module",
               DEVID_SOFTHSM2_MODULE, "--symmetric-key-file", file, "-o", "json"});
    std::filesystem::remove(file);
    return r;
  }

  CommandResult Register(const std::string& reg_id, const std::string& uri) {
    return Devid({"device", "register", "--pkcs11", uri, "--pkcs11-module", DEVID_SOFTHSM2_MODULE,
                  "--registration-id", reg_id, "--id-scope", server_->id_scope(), "--endpoint",
                  server_->device_endpoint(), "--trust-bundle", server_->trust_bundle_file(), "-o",
                  "json"});
  }

  // Registered tells whether the service holds a registration record for reg_id.
  bool Registered(const std::string& reg_id) {
    return Devid({"registration", "show", reg_id, "-o", "json", "--connection",
                  server_->connection_file()})
               .exit_code == 0;
  }

  // Pkcs11Tool runs pkcs11-tool logged in to the test token; returns its exit status.
  int Pkcs11Tool(const std::string& args, std::string* output) const {
    return RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                        " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                        SoftHsmToken::kPin + " " + args,
                    output);
  }

  SoftHsmToken token_;
  std::vector<std::string> env_;
  std::optional<ServerProcess> server_;
};

TEST_F(DeviceSasHsmTest, Registers_WithSasKeyInTheToken_KeyNeverReadable) {
  Enroll("hsm-sas-1");
  CommandResult imported = Import("sas-key", kDeviceKey);
  ASSERT_EQ(imported.exit_code, 0) << Describe(imported);
  json stored = json::parse(imported.out);
  EXPECT_THAT(stored["key"].get<std::string>(), HasSubstr("object=sas-key"));
  EXPECT_THAT(stored["key"].get<std::string>(), HasSubstr("pkcs11:id="));

  CommandResult r = Register("hsm-sas-1", Uri("sas-key"));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json assignment = json::parse(r.out);
  EXPECT_EQ(assignment["registrationId"], "hsm-sas-1");
  EXPECT_EQ(assignment["deviceId"], "hsm-sas-1");
  EXPECT_EQ(assignment["substatus"], "initialAssignment");
  EXPECT_TRUE(Registered("hsm-sas-1"));

  // Sensitive and not extractable: the Access line has "sensitive" and no bare "extractable".
  // (An imported key is not "never extractable", PKCS #11 v2.40 §4.10: it was outside once.)
  std::string listing;
  ASSERT_EQ(Pkcs11Tool("--list-objects --type secrkey", &listing), 0) << listing;
  EXPECT_THAT(listing, HasSubstr("label:      sas-key"));
  EXPECT_THAT(listing, HasSubstr("Access:     sensitive"));
  EXPECT_THAT(listing, Not(HasSubstr(" extractable")));
  EXPECT_THAT(listing, Not(HasSubstr("encrypt")));
  EXPECT_THAT(listing, Not(HasSubstr("decrypt")));
  std::string read;
  EXPECT_NE(Pkcs11Tool("--read-object --type secrkey --label sas-key", &read), 0) << read;
  EXPECT_THAT(read, Not(HasSubstr("941805b0b044")));  // the key's first bytes in hex

  // Nothing the device or the server wrote holds the key.
  EXPECT_THAT(imported.out + imported.err + r.out + r.err + server_->log(),
              Not(HasSubstr(kDeviceKey)));
}

TEST_F(DeviceSasHsmTest, Rejects_WrongPin_RegistersNothing) {
  Enroll("hsm-sas-2");
  ASSERT_EQ(Import("sas-key", kDeviceKey).exit_code, 0);
  CommandResult r = Register("hsm-sas-2", Uri("sas-key", SecretFile("wrong.pin", "0000")));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("the token refused the PIN"));
  EXPECT_THAT(r.err, HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(r.err, Not(HasSubstr("0000")));
  EXPECT_FALSE(Registered("hsm-sas-2"));
}

TEST_F(DeviceSasHsmTest, Rejects_MissingToken_RegistersNothing) {
  Enroll("hsm-sas-3");
  CommandResult r = Register("hsm-sas-3", Uri("sas-key", "", "no-such-token"));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no token with that label is present"));
  EXPECT_FALSE(Registered("hsm-sas-3"));
}

TEST_F(DeviceSasHsmTest, Rejects_MissingKey_RegistersNothing) {
  Enroll("hsm-sas-4");
  CommandResult r = Register("hsm-sas-4", Uri("never-imported"));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("the token holds no symmetric key with that label"));
  EXPECT_THAT(r.err, HasSubstr("import-symmetric"));
  EXPECT_FALSE(Registered("hsm-sas-4"));
}

TEST_F(DeviceSasHsmTest, Rejects_TokenKeyOtherThanTheEnrollments_RegistersNothing) {
  Enroll("hsm-sas-5");
  ASSERT_EQ(Import("other-key", kOtherKey).exit_code, 0);
  CommandResult r = Register("hsm-sas-5", Uri("other-key"));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("HTTP 401"));
  EXPECT_THAT(r.err, HasSubstr("SAS token signature does not verify"));
  EXPECT_FALSE(Registered("hsm-sas-5"));
}

TEST_F(DeviceSasHsmTest, Rejects_ImportOverAnExistingKey_KeepingIt) {
  Enroll("hsm-sas-6");
  ASSERT_EQ(Import("sas-key", kDeviceKey).exit_code, 0);
  CommandResult again = Import("sas-key", kOtherKey);
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_THAT(again.err, Not(HasSubstr(kOtherKey)));
  // The token still holds the first key: registration with it succeeds.
  CommandResult r = Register("hsm-sas-6", Uri("sas-key"));
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

TEST_F(DeviceSasHsmTest, Rejects_ImportOfABadKey_StoringNothing) {
  CommandResult not_base64 = Import("bad", "not base64!");
  EXPECT_EQ(not_base64.exit_code, 1) << Describe(not_base64);
  EXPECT_THAT(not_base64.err, HasSubstr("not base64"));
  CommandResult too_short = Import("short", "SmVmZQ==");  // "Jefe", RFC 4231 §4.3
  EXPECT_EQ(too_short.exit_code, 1) << Describe(too_short);
  EXPECT_THAT(too_short.err, HasSubstr("4 bytes; expected 32 to 512"));
  std::string listing;
  ASSERT_EQ(Pkcs11Tool("--list-objects --type secrkey", &listing), 0) << listing;
  EXPECT_THAT(listing, Not(HasSubstr("label:")));
}

}  // namespace
}  // namespace devid::testing
