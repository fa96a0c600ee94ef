// Certificate renewal as a device does it, against the real `devid serve`: the SDK's EST client
// gets a first certificate with the device's SAS token (signed with its symmetric key), then
// `devid device renew` renews it through simplereenroll (a new key by default), checked with
// openssl; the old certificate stays valid until the operator revokes it; an unreachable server
// or a refusal leaves the device's files as they were.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "base/file.h"
#include "devid/device_key.h"
#include "devid/est_client.h"
#include "est_client.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDevice[] = "renew-device-1";
constexpr char kDeviceKey[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

std::string Contents(const std::string& path) {
  auto text = ReadFile(path);
  return text ? *text : "";
}

class DeviceRenewTest : public ::testing::Test {
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
    dir_ = TestDir(*server_, "renew-");
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/passphrase", "device key passphrase\n", 0600));
    key_uri_ = "file:" + dir_ + "/device.key?passphrase-file=" + dir_ + "/passphrase";
    certificate_file_ = dir_ + "/device.pem";
    ASSERT_EQ(EstCurl(*server_, "cacerts", "", dir_ + "/cacerts.b64"), "200");
    cacerts_pem_ = Pkcs7ToPem(dir_ + "/cacerts.b64");
  }

  static sdk::EstOptions Est(uint16_t port = 0) {
    return {.host = "localhost",
            .port = port != 0 ? port : server_->port(),
            .trust_bundle_pem = server_->trust_bundle_pem()};
  }

  // Enroll makes the device key and gets its first certificate with the SDK (simpleenroll with
  // the SAS token), written where the device keeps it.
  void Enroll() {
    ASSERT_TRUE(sdk::CreateDeviceKey(key_uri_).has_value());
    auto key = sdk::OpenDeviceKey(key_uri_);
    ASSERT_TRUE(key.has_value()) << key.error().message();
    auto sas = sdk::SymmetricKeyCredential(kDeviceKey);
    ASSERT_TRUE(sas.has_value()) << sas.error().message();
    sdk::EstClient est(Est());
    // The SDK signs the device's SAS token itself with its symmetric key.
    auto certificate = est.SimpleEnroll(**key, server_->id_scope(), kDevice, **sas);
    ASSERT_TRUE(certificate.has_value()) << certificate.error().message();
    ASSERT_TRUE(WriteFileAtomically(certificate_file_, certificate->ToPem(), 0600));
  }

  CommandResult Renew(const std::vector<std::string>& extra, const std::string& endpoint = "") {
    std::vector<std::string> argv = {DEVID_BINARY,
                                     "device",
                                     "renew",
                                     "--cert",
                                     certificate_file_,
                                     "--key",
                                     key_uri_,
                                     "--endpoint",
                                     endpoint.empty() ? server_->device_endpoint() : endpoint,
                                     "--trust-bundle",
                                     server_->trust_bundle_file()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  std::string VerifyOutput(const std::string& certificate_pem) {
    std::string output;
    RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + cacerts_pem_ + " " +
                 certificate_pem,
             &output);
    return output;
  }
  std::string Subject(const std::string& pem) {
    return Shell("openssl x509 -in " + pem + " -noout -subject -nameopt RFC2253");
  }
  std::string Serial(const std::string& pem) {
    std::string serial = Shell("openssl x509 -in " + pem + " -noout -serial | cut -d= -f2");
    serial.erase(serial.find_last_not_of('\n') + 1);
    return serial;
  }
  std::string CertificatePublicKey(const std::string& pem) {
    return Shell("openssl x509 -in " + pem + " -noout -pubkey");
  }
  std::string KeyPublicKey() {
    return Shell("openssl pkey -in " + dir_ + "/device.key -passin file:" + dir_ +
                 "/passphrase -pubout");
  }
  bool PendingFilesLeft() {
    return std::filesystem::exists(dir_ + "/device.key.next") ||
           std::filesystem::exists(certificate_file_ + ".next");
  }

  static ServerProcess* server_;
  std::string dir_;
  std::string key_uri_;
  std::string certificate_file_;
  std::string cacerts_pem_;
};

ServerProcess* DeviceRenewTest::server_ = nullptr;

TEST_F(DeviceRenewTest, Renew_WithANewKey_ChainsKeepsTheSubjectAndLeavesTheOldValid) {
  ASSERT_NO_FATAL_FAILURE(Enroll());
  std::string old_pem = dir_ + "/old.pem";
  std::filesystem::copy_file(certificate_file_, old_pem);
  std::string old_key = Contents(dir_ + "/device.key");

  CommandResult renewed = Renew({"--force"});
  ASSERT_EQ(renewed.exit_code, 0) << Describe(renewed);
  EXPECT_THAT(renewed.out, HasSubstr("Renewed"));
  EXPECT_THAT(renewed.out, HasSubstr("for a new key"));

  EXPECT_THAT(VerifyOutput(certificate_file_), HasSubstr(": OK"));
  EXPECT_EQ(Subject(certificate_file_), std::string("subject=CN=") + kDevice + "\n");
  EXPECT_NE(Serial(certificate_file_), Serial(old_pem));
  EXPECT_EQ(CertificatePublicKey(certificate_file_), KeyPublicKey());
  EXPECT_NE(CertificatePublicKey(certificate_file_), CertificatePublicKey(old_pem));
  EXPECT_NE(Contents(dir_ + "/device.key"), old_key);
  EXPECT_FALSE(PendingFilesLeft());
  // No key material outside the encrypted key file, and no passphrase in what the command says.
  EXPECT_THAT(Contents(certificate_file_), Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(Contents(dir_ + "/device.key"), HasSubstr("BEGIN ENCRYPTED PRIVATE KEY"));
  EXPECT_THAT(renewed.out + renewed.err, Not(HasSubstr("device key passphrase")));
  EXPECT_EQ(std::filesystem::status(certificate_file_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // Renewal revokes nothing: the old certificate is current in the inventory and still verifies.
  EXPECT_THAT(VerifyOutput(old_pem), HasSubstr(": OK"));
  CommandResult listed = RunCommand({DEVID_BINARY, "cert", "list", "--device", kDevice, "-o",
                                     "json", "--connection", server_->connection_file()});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr(Serial(old_pem)));
  EXPECT_THAT(listed.out, HasSubstr("\"status\": \"valid\""));
  EXPECT_THAT(listed.out, Not(HasSubstr("revoked")));

  // The renewed credential renews in turn.
  CommandResult again = Renew({"--force"});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(VerifyOutput(certificate_file_), HasSubstr(": OK"));
}

TEST_F(DeviceRenewTest, RevokedCertificate_IsRefused_AndTheFilesStay) {
  ASSERT_NO_FATAL_FAILURE(Enroll());
  std::string old_pem = dir_ + "/old.pem";
  std::filesystem::copy_file(certificate_file_, old_pem);
  CommandResult renewed = Renew({"--force", "--same-key"});
  ASSERT_EQ(renewed.exit_code, 0) << Describe(renewed);
  EXPECT_THAT(renewed.out, HasSubstr("for the same key"));
  std::string renewed_pem = Contents(certificate_file_);

  // Until the operator revokes it, the old certificate still renews (same key: the device kept
  // it); once revoked, it is refused.
  std::filesystem::copy_file(old_pem, certificate_file_,
                             std::filesystem::copy_options::overwrite_existing);
  CommandResult still_valid = Renew({"--force", "--same-key"});
  ASSERT_EQ(still_valid.exit_code, 0) << Describe(still_valid);
  std::filesystem::copy_file(old_pem, certificate_file_,
                             std::filesystem::copy_options::overwrite_existing);
  CommandResult revoked =
      RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", Serial(old_pem), "--reason",
                  "superseded", "--connection", server_->connection_file()});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);
  std::string key = Contents(dir_ + "/device.key");

  CommandResult refused = Renew({"--force"});
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("the server refused (HTTP 403)"));
  EXPECT_THAT(refused.err, HasSubstr("was revoked"));
  EXPECT_THAT(refused.err, HasSubstr("The current certificate and key are unchanged and in use"));
  EXPECT_EQ(Contents(certificate_file_), Contents(old_pem));
  EXPECT_EQ(Contents(dir_ + "/device.key"), key);
  EXPECT_FALSE(PendingFilesLeft());

  // The certificate renewed before the revocation is not affected.
  ASSERT_TRUE(WriteFileAtomically(certificate_file_, renewed_pem, 0600));
  CommandResult current = Renew({"--force"});
  EXPECT_EQ(current.exit_code, 0) << Describe(current);
}

TEST_F(DeviceRenewTest, ServerUnreachable_FailsInPlainWords_AndTheFilesStay) {
  ASSERT_NO_FATAL_FAILURE(Enroll());
  std::string certificate = Contents(certificate_file_);
  std::string key = Contents(dir_ + "/device.key");
  // Port 1 on the loopback: nothing listens there.
  CommandResult failed = Renew({"--force"}, "https://127.0.0.1:1");
  EXPECT_EQ(failed.exit_code, 1) << Describe(failed);
  EXPECT_THAT(failed.err, HasSubstr("through EST: connecting to https://127.0.0.1:1"));
  EXPECT_THAT(failed.err, HasSubstr("The current certificate and key are unchanged and in use"));
  EXPECT_EQ(Contents(certificate_file_), certificate);
  EXPECT_EQ(Contents(dir_ + "/device.key"), key);
  EXPECT_FALSE(PendingFilesLeft());
}

TEST_F(DeviceRenewTest, NotDue_SendsNothing_AndSaysWhenItWillBe) {
  ASSERT_NO_FATAL_FAILURE(Enroll());
  std::string certificate = Contents(certificate_file_);
  CommandResult checked = Renew({});
  EXPECT_EQ(checked.exit_code, 0) << Describe(checked);
  EXPECT_THAT(checked.out, HasSubstr("Not renewed: the certificate is not due yet"));
  EXPECT_THAT(checked.out, HasSubstr("Renewal due"));
  EXPECT_EQ(Contents(certificate_file_), certificate);
}

TEST_F(DeviceRenewTest, Show_PrintsIdentityIssuerExpiryAndRenewalDue) {
  ASSERT_NO_FATAL_FAILURE(Enroll());
  CommandResult shown = RunCommand({DEVID_BINARY, "device", "show", "--cert", certificate_file_});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("Registration ID"));
  EXPECT_THAT(shown.out, HasSubstr(kDevice));
  EXPECT_THAT(shown.out, HasSubstr("Issuer"));
  EXPECT_THAT(shown.out, HasSubstr("Valid until"));
  EXPECT_THAT(shown.out, HasSubstr("Renewal due"));
  CommandResult json =
      RunCommand({DEVID_BINARY, "device", "show", "--cert", certificate_file_, "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_THAT(json.out, HasSubstr("\"registrationId\": \"" + std::string(kDevice) + "\""));
  EXPECT_THAT(json.out, HasSubstr("\"renewalDue\""));
}

TEST_F(DeviceRenewTest, SimpleEnroll_Rejects_AnotherDevicesToken) {
  ASSERT_TRUE(sdk::CreateDeviceKey(key_uri_).has_value());
  auto key = sdk::OpenDeviceKey(key_uri_);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  sdk::EstClient est(Est());
  auto certificate =
      est.SimpleEnroll(**key, "someone-else", DeviceSasToken(*server_, kDevice, kDeviceKey));
  ASSERT_FALSE(certificate.has_value());
  EXPECT_EQ(certificate.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(certificate.error().message(),
              HasSubstr("enrolling someone-else through EST: the server refused (HTTP 403)"));
  CommandResult listed = RunCommand({DEVID_BINARY, "cert", "list", "--device", "someone-else", "-o",
                                     "json", "--connection", server_->connection_file()});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, Not(HasSubstr("serialNumber")));
}

TEST_F(DeviceRenewTest, EstClient_Rejects_AServerOutsideTheTrustBundle) {
  ASSERT_TRUE(sdk::CreateDeviceKey(key_uri_).has_value());
  // A bundle with another root: the CA certificate of a second, unrelated devid.
  sdk::EstOptions options = Est();
  auto other = ServerProcess::Start();
  ASSERT_TRUE(other.has_value()) << other.error().message();
  options.trust_bundle_pem = other->trust_bundle_pem();
  sdk::EstClient est(options);
  auto certificates = est.CaCerts();
  ASSERT_FALSE(certificates.has_value());
  EXPECT_EQ(certificates.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(certificates.error().message(), HasSubstr("reading the CA certificates through EST"));
  EXPECT_THAT(certificates.error().message(),
              HasSubstr("the server's certificate is not signed by your trust bundle"));
}

}  // namespace
}  // namespace devid::testing
