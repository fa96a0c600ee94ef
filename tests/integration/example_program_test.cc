// The device SDK's example program (examples/provision_and_renew.cc) against the real
// `devid serve`, driven by nothing but connection.json: a symmetric-key device registers, saves
// its assignment and obeys a server-signed command once; an X.509 device registers and renews its
// certificate through EST; a server its trust bundle does not vouch for gets nothing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/file.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "server_process.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceKey[] = "u0eGvfSsOeSfTjWyFwBeFvqkdN2vXJ0Ze8rdJVH7aPs=";
constexpr char kPassphrase[] = "example device passphrase";
const std::vector<std::string> kEnv = {std::string("DEVID_DEVICE_PASSPHRASE=") + kPassphrase};

CommandResult Example(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), DEVID_EXAMPLE_BINARY);
  return RunCommand(args, env);
}

class ExampleProgramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }

  void EnrollSymmetric(const std::string& id) {
    CommandResult added = Devid({"enrollment", "add", "--registration-id", id, "--primary-key",
                                 kDeviceKey, "--connection", server_->connection_file()});
    ASSERT_EQ(added.exit_code, 0) << Describe(added);
    std::ofstream(Path("device.key")) << kDeviceKey << "\n";
  }

  std::optional<ServerProcess> server_;
};

TEST_F(ExampleProgramTest, SymmetricKeyDevice_RegistersSavesItsHubAndObeysACommandOnce) {
  ASSERT_NO_FATAL_FAILURE(EnrollSymmetric("example-sas-1"));
  std::vector<std::string> args = {"--connection",  server_->connection_file(), "--registration-id",
                                   "example-sas-1", "--symmetric-key-file",     Path("device.key"),
                                   "--state",       Path("assignment.json")};
  CommandResult first = Example(args);
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  EXPECT_THAT(first.out, HasSubstr("Registering example-sas-1 with its symmetric key"));
  EXPECT_THAT(first.out, HasSubstr("Registered example-sas-1: hub "));
  EXPECT_THAT(first.out, HasSubstr("Saved the assignment in " + Path("assignment.json")));
  EXPECT_TRUE(Registered(*server_, "example-sas-1"));
  EXPECT_TRUE(std::filesystem::exists(Path("assignment.json")));

  // Once registered, the device can be sent a command; it obeys it once.
  CommandResult sent =
      Devid({"command", "send", "example-sas-1", "--json", R"({"reboot":true})", "--out",
             Path("reboot.jws"), "--connection", server_->connection_file()});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  args.insert(args.end(),
              {"--command", Path("reboot.jws"), "--command-state", Path("commands.json")});
  CommandResult obeyed = Example(args);
  ASSERT_EQ(obeyed.exit_code, 0) << Describe(obeyed);
  EXPECT_THAT(obeyed.out, HasSubstr(R"(Accepted command 1: {"reboot":true})"));
  EXPECT_THAT(obeyed.out, Not(HasSubstr("moved this device")));

  // The same envelope again is a replay: the device ignores it and says why.
  CommandResult again = Example(args);
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(again.out, HasSubstr("Ignored the command (replayed)"));
}

TEST_F(ExampleProgramTest, X509Device_RegistersAndRenewsItsCertificateWithANewKey) {
  std::string key_uri = "file:" + Path("device.ec") + "?passphrase-env=DEVID_DEVICE_PASSPHRASE";
  CommandResult created = Devid({"device", "key", "create", "--key", key_uri}, kEnv);
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  ASSERT_TRUE(CertifyDeviceKey(*server_, key_uri, "example-x509-1", Path("device.csr"),
                               Path("device.pem"), kEnv));
  auto chain = ReadFile(Path("device.pem"));
  ASSERT_TRUE(chain);
  ASSERT_TRUE(EnrollCertificate(*server_, "example-x509-1", *chain));
  std::string old_key = ReadFile(Path("device.ec")).value_or("");

  CommandResult r = Example({"--connection", server_->connection_file(), "--cert",
                             Path("device.pem"), "--key", key_uri, "--renew-now"},
                            kEnv);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Registering example-x509-1 with its X.509 certificate"));
  EXPECT_THAT(r.out, HasSubstr("Registered example-x509-1: hub "));
  EXPECT_THAT(r.out, HasSubstr("Renewed the certificate with a new key: serial "));
  EXPECT_TRUE(Registered(*server_, "example-x509-1"));

  // The renewed certificate chains to the trust bundle and certifies the new key in the file.
  std::string verified, certified, held;
  EXPECT_EQ(RunShell("openssl verify -purpose sslclient -CAfile " + server_->trust_bundle_file() +
                         " -untrusted " + Path("device.pem") + " " + Path("device.pem"),
                     &verified),
            0)
      << verified;
  ASSERT_EQ(RunShell("openssl x509 -noout -pubkey -in " + Path("device.pem"), &certified), 0);
  ASSERT_EQ(RunShell("openssl pkey -pubout -in " + Path("device.ec") +
                         " -passin 'pass:" + kPassphrase + "'",
                     &held),
            0)
      << held;
  EXPECT_EQ(certified, held);
  EXPECT_NE(ReadFile(Path("device.ec")).value_or(""), old_key);
}

TEST_F(ExampleProgramTest, Refuses_ServerOutsideItsTrustBundle_RegistersNothing) {
  ASSERT_NO_FATAL_FAILURE(EnrollSymmetric("example-sas-2"));
  std::string made;
  ASSERT_EQ(RunShell("cd " + server_->root() +
                         " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                         "-nodes -keyout other-ca.key -out other-ca.pem -days 1 -subj "
                         "/CN=another-ca 2>&1",
                     &made),
            0)
      << made;
  nlohmann::json connection = server_->connection();
  connection["trustBundle"] = Path("other-ca.pem");
  std::ofstream(Path("other-connection.json")) << connection.dump(2);

  CommandResult r =
      Example({"--connection", Path("other-connection.json"), "--registration-id", "example-sas-2",
               "--symmetric-key-file", Path("device.key"), "--state", Path("assignment.json")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("Failed to register: "));
  EXPECT_THAT(r.err, HasSubstr("the server's certificate is not signed by your trust bundle"));
  EXPECT_FALSE(Registered(*server_, "example-sas-2"));
  EXPECT_FALSE(std::filesystem::exists(Path("assignment.json")));
}

}  // namespace
}  // namespace devid::testing
