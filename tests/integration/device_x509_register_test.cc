// `devid device register --x509` with a key in an encrypted file (the device SDK's X.509
// provisioning over mutual TLS, protocol notes §3) against the real `devid serve`: the key is made
// by `devid device key create`, certified through `devid device csr` and `devid ca issue`, and
// signs the TLS handshake inside its key store. Each refusal leaves no registration behind.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/file.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "server_process.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassphrase[] = "device passphrase 7f3a";
const std::vector<std::string> kEnv = {std::string("DEVID_DEVICE_PASSPHRASE=") + kPassphrase};

class DeviceX509RegisterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }
  std::string KeyUri(const std::string& name) const {
    return "file:" + Path(name) + "?passphrase-env=DEVID_DEVICE_PASSPHRASE";
  }

  // CreateKey runs `devid device key create` for a file key called name.
  void CreateKey(const std::string& name) {
    CommandResult created = Devid({"device", "key", "create", "--key", KeyUri(name)}, kEnv);
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
    EXPECT_THAT(created.out, HasSubstr(Path(name)));
  }

  std::optional<ServerProcess> server_;
};

TEST_F(DeviceX509RegisterTest, Registers_WithFileKey_AndLeavesWithIssuedCertificate) {
  ASSERT_NO_FATAL_FAILURE(CreateKey("device.key"));
  struct stat st {};
  ASSERT_EQ(::stat(Path("device.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto key_text = ReadFile(Path("device.key"));
  ASSERT_TRUE(key_text);
  EXPECT_THAT(*key_text, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  ASSERT_TRUE(CertifyDeviceKey(*server_, KeyUri("device.key"), "x509-sdk-1", Path("device.csr"),
                               Path("device.pem"), kEnv));
  auto chain = ReadFile(Path("device.pem"));
  ASSERT_TRUE(chain);
  ASSERT_TRUE(EnrollCertificate(*server_, "x509-sdk-1", *chain));

  // A second key asks devid for its operational certificate at registration.
  ASSERT_NO_FATAL_FAILURE(CreateKey("next.key"));
  CommandResult csr = Devid({"device", "csr", "--key", KeyUri("next.key"), "--registration-id",
                             "x509-sdk-1", "--out", Path("next.csr")},
                            kEnv);
  ASSERT_EQ(csr.exit_code, 0) << Describe(csr);

  CommandResult r =
      RegisterX509(*server_, Path("device.pem"), KeyUri("device.key"),
                   {"--csr", Path("next.csr"), "--issued-cert-out", Path("next.pem")}, kEnv);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json assignment = json::parse(r.out);
  EXPECT_EQ(assignment["registrationId"], "x509-sdk-1");
  EXPECT_EQ(assignment["deviceId"], "x509-sdk-1");
  EXPECT_FALSE(assignment["assignedHub"].get<std::string>().empty());
  EXPECT_TRUE(Registered(*server_, "x509-sdk-1"));

  // The issued certificate names the device and certifies the second key, and chains to the CA.
  std::string issued_key, requested_key, subject, verified;
  ASSERT_EQ(RunShell("openssl x509 -noout -pubkey -in " + Path("next.pem"), &issued_key), 0)
      << issued_key;
  ASSERT_EQ(RunShell("openssl req -noout -pubkey -in " + Path("next.csr"), &requested_key), 0);
  EXPECT_EQ(issued_key, requested_key);
  ASSERT_EQ(RunShell("openssl x509 -noout -subject -in " + Path("next.pem"), &subject), 0);
  EXPECT_THAT(subject, HasSubstr("CN = x509-sdk-1"));
  EXPECT_EQ(
      RunShell("openssl verify -purpose sslclient -CAfile " + server_->data_dir() +
                   "/ca/trust-bundle.pem -untrusted " + Path("next.pem") + " " + Path("next.pem"),
               &verified),
      0)
      << verified;
  // Nothing the command printed holds the passphrase.
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kPassphrase)));
}

TEST_F(DeviceX509RegisterTest, Refuses_KeyTheCertificateDoesNotCertify_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateKey("device.key"));
  ASSERT_NO_FATAL_FAILURE(CreateKey("other.key"));
  ASSERT_TRUE(CertifyDeviceKey(*server_, KeyUri("device.key"), "x509-sdk-2", Path("device.csr"),
                               Path("device.pem"), kEnv));
  auto chain = ReadFile(Path("device.pem"));
  ASSERT_TRUE(chain);
  ASSERT_TRUE(EnrollCertificate(*server_, "x509-sdk-2", *chain));
  CommandResult r = RegisterX509(*server_, Path("device.pem"), KeyUri("other.key"), {}, kEnv);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("does not certify key file:"));
  EXPECT_FALSE(Registered(*server_, "x509-sdk-2"));
}

TEST_F(DeviceX509RegisterTest, Refuses_CertificateWithoutEnrollment_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateKey("device.key"));
  ASSERT_TRUE(CertifyDeviceKey(*server_, KeyUri("device.key"), "x509-sdk-3", Path("device.csr"),
                               Path("device.pem"), kEnv));
  CommandResult r = RegisterX509(*server_, Path("device.pem"), KeyUri("device.key"), {}, kEnv);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("registering x509-sdk-3: the service answered HTTP 401"));
  EXPECT_FALSE(Registered(*server_, "x509-sdk-3"));
}

TEST_F(DeviceX509RegisterTest, Refuses_WrongPassphrase_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateKey("device.key"));
  ASSERT_TRUE(CertifyDeviceKey(*server_, KeyUri("device.key"), "x509-sdk-4", Path("device.csr"),
                               Path("device.pem"), kEnv));
  auto chain = ReadFile(Path("device.pem"));
  ASSERT_TRUE(chain);
  ASSERT_TRUE(EnrollCertificate(*server_, "x509-sdk-4", *chain));
  CommandResult r = RegisterX509(*server_, Path("device.pem"), KeyUri("device.key"), {},
                                 {"DEVID_DEVICE_PASSPHRASE=not the passphrase"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("wrong passphrase"));
  EXPECT_FALSE(Registered(*server_, "x509-sdk-4"));
}

TEST_F(DeviceX509RegisterTest, Refuses_KeyCreateForRsa_SayingWhy) {
  CommandResult r = Devid(
      {"device", "key", "create", "--key", KeyUri("rsa.key"), "--algorithm", "rsa-3072"}, kEnv);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("a device key must be ecdsa-p256 or ecdsa-p384, the keys that sign "
                               "TLS handshakes inside their store; rsa-3072 cannot"));
  EXPECT_FALSE(std::filesystem::exists(Path("rsa.key")));
}

}  // namespace
}  // namespace devid::testing
