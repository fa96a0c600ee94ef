// `devid device enroll` against the real `devid serve`: a technician gets a device's first
// certificate through EST simpleenroll, authorized by the SAS token the SDK signs with the
// device's symmetric key, for a new key made in the device's key store; the certificate chains
// (openssl verify) and certifies that key. Every refusal leaves no key, no certificate file and
// no certificate in the server's inventory.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <filesystem>
#include <string>

#include "base/file.h"
#include "devid/device_key.h"
#include "est_client.h"
#include "keys/key_store.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "pki/certificate.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDevice[] = "enroll-device-1";
constexpr char kDeviceKey[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr char kOtherKey[] = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

class DeviceEnrollTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = StartServerWithSasEnrollments({}, {kDevice}, kDeviceKey);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = TestDir(*server_, "enroll-");
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/passphrase", "device key passphrase\n", 0600));
    key_file_ = dir_ + "/device.key";
    key_uri_ = "file:" + key_file_ + "?passphrase-file=" + dir_ + "/passphrase";
    certificate_file_ = dir_ + "/device.pem";
    ASSERT_EQ(EstCurl(*server_, "cacerts", "", dir_ + "/cacerts.b64"), "200");
    cacerts_pem_ = Pkcs7ToPem(dir_ + "/cacerts.b64");
  }

  // SasKeyFile writes a base64 symmetric key to a file only its owner reads.
  std::string SasKeyFile(const std::string& key_base64) {
    std::string path = dir_ + "/sas.key";
    EXPECT_TRUE(WriteFileAtomically(path, key_base64 + "\n", 0600));
    return path;
  }

  CommandResult Enroll(const std::vector<std::string>& sas_flags,
                       const std::string& endpoint = "") {
    std::vector<std::string> argv = {DEVID_BINARY, "device", "enroll"};
    argv.insert(argv.end(), sas_flags.begin(), sas_flags.end());
    std::vector<std::string> rest = {"--key",
                                     key_uri_,
                                     "--cert-out",
                                     certificate_file_,
                                     "--registration-id",
                                     kDevice,
                                     "--id-scope",
                                     server_->id_scope(),
                                     "--endpoint",
                                     endpoint.empty() ? server_->device_endpoint() : endpoint,
                                     "--trust-bundle",
                                     server_->trust_bundle_file()};
    argv.insert(argv.end(), rest.begin(), rest.end());
    return RunCommand(argv);
  }

  // Inventory is the server's list of this device's certificates.
  std::string Inventory() {
    CommandResult listed = RunCommand({DEVID_BINARY, "cert", "list", "--device", kDevice, "-o",
                                       "json", "--connection", server_->connection_file()});
    EXPECT_EQ(listed.exit_code, 0) << Describe(listed);
    return listed.out;
  }

  // ExpectNothingLeft checks a refusal left no key, no certificate file and no new certificate.
  void ExpectNothingLeft(const std::string& inventory_before) {
    EXPECT_FALSE(std::filesystem::exists(key_file_));
    EXPECT_FALSE(std::filesystem::exists(certificate_file_));
    EXPECT_EQ(Inventory(), inventory_before);
  }

  static ServerProcess* server_;
  std::string dir_;
  std::string key_file_;
  std::string key_uri_;
  std::string certificate_file_;
  std::string cacerts_pem_;
};

ServerProcess* DeviceEnrollTest::server_ = nullptr;

TEST_F(DeviceEnrollTest, Enroll_WithTheSymmetricKey_WritesAChainedCertificateForANewKey) {
  CommandResult enrolled = Enroll({"--symmetric-key-file", SasKeyFile(kDeviceKey)});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
  EXPECT_THAT(enrolled.out, HasSubstr("first certificate, for a new key"));

  std::string verified;
  RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + cacerts_pem_ + " " +
               certificate_file_,
           &verified);
  EXPECT_THAT(verified, HasSubstr(": OK"));
  auto pem = ReadFile(certificate_file_);
  ASSERT_TRUE(pem);
  auto certificate = pki::Certificate::FromPem(*pem);
  ASSERT_TRUE(certificate.has_value());
  EXPECT_EQ(certificate->SubjectName(), std::string("CN=") + kDevice);
  auto key = sdk::OpenDeviceKey(key_uri_);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(certificate->get()), (*key)->public_key()), 1);
  EXPECT_EQ(std::filesystem::status(certificate_file_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_THAT(*pem, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(enrolled.out + enrolled.err, Not(HasSubstr(kDeviceKey)));
  EXPECT_THAT(Inventory(), HasSubstr(certificate->SerialHex()));

  // The first certificate renews through simplereenroll.
  CommandResult renewed = RunCommand({DEVID_BINARY, "device", "renew", "--cert", certificate_file_,
                                      "--key", key_uri_, "--endpoint", server_->device_endpoint(),
                                      "--trust-bundle", server_->trust_bundle_file(), "--force"});
  EXPECT_EQ(renewed.exit_code, 0) << Describe(renewed);
}

TEST_F(DeviceEnrollTest, Rejects_AWrongSymmetricKey_AndLeavesNothing) {
  std::string inventory = Inventory();
  CommandResult refused = Enroll({"--symmetric-key-file", SasKeyFile(kOtherKey)});
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("the server refused (HTTP 401)"));
  EXPECT_THAT(refused.err, HasSubstr("The new key was deleted again"));
  ExpectNothingLeft(inventory);
}

TEST_F(DeviceEnrollTest, ServerUnreachable_FailsInPlainWords_AndLeavesNothing) {
  std::string inventory = Inventory();
  CommandResult failed =
      Enroll({"--symmetric-key-file", SasKeyFile(kDeviceKey)}, "https://127.0.0.1:1");
  EXPECT_EQ(failed.exit_code, 1) << Describe(failed);
  EXPECT_THAT(failed.err, HasSubstr("connecting to https://127.0.0.1:1"));
  ExpectNothingLeft(inventory);
}

TEST_F(DeviceEnrollTest, Rejects_AnExistingCertificateFile_WithoutMakingAKey) {
  ASSERT_TRUE(WriteFileAtomically(certificate_file_, "kept\n", 0600));
  std::string inventory = Inventory();
  CommandResult refused = Enroll({"--symmetric-key-file", SasKeyFile(kDeviceKey)});
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err,
              HasSubstr("has a certificate already (renew it with devid device renew)"));
  EXPECT_FALSE(std::filesystem::exists(key_file_));
  EXPECT_EQ(*ReadFile(certificate_file_), "kept\n");
  EXPECT_EQ(Inventory(), inventory);
}

TEST_F(DeviceEnrollTest, Rejects_NoSasKeyOrTwo_WithoutMakingAKey) {
  std::string inventory = Inventory();
  CommandResult none = Enroll({});
  EXPECT_EQ(none.exit_code, 1) << Describe(none);
  EXPECT_THAT(none.err, HasSubstr("choose one of --symmetric-key-file and --pkcs11"));
  CommandResult both = Enroll({"--symmetric-key-file", SasKeyFile(kDeviceKey), "--pkcs11",
                               "pkcs11:token=t;object=o?pin-source=pin"});
  EXPECT_EQ(both.exit_code, 1) << Describe(both);
  EXPECT_THAT(both.err, HasSubstr("choose one of --symmetric-key-file and --pkcs11"));
  ExpectNothingLeft(inventory);
}

TEST_F(DeviceEnrollTest, Rejects_AMissingSymmetricKeyFile_WithoutMakingAKey) {
  std::string inventory = Inventory();
  CommandResult refused = Enroll({"--symmetric-key-file", dir_ + "/absent.key"});
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("--symmetric-key-file"));
  ExpectNothingLeft(inventory);
}

}  // namespace
}  // namespace devid::testing
