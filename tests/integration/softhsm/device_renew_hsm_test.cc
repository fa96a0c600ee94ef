// `devid device renew` and `devid device enroll` with the device's keys in a SoftHSM2 token
// against the real `devid serve`: EST simplereenroll authenticated by the token key (the TLS
// handshake is signed inside the token), keeping that key or, by default, rotating it inside the
// token (the old key object destroyed, the new one under the old label); a failed rotation leaves
// token and files as they were; and a first certificate by EST simpleenroll authorized with a SAS
// token computed inside the token.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "base/file.h"
#include "est_client.h"
#include "keys/testing/softhsm_token.h"
#include "server_process.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDevice[] = "renew-hsm-1";
constexpr char kEnrolledDevice[] = "enroll-hsm-1";
constexpr char kEnrolledDeviceKey[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

class DeviceRenewHsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(token_.ok()) << token_.init_output();
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    key_uri_ = std::string("pkcs11:token=") + SoftHsmToken::kLabel +
               ";object=device-key?pin-source=" + token_.pin_file();
    CommandResult created = Devid(
        {"device", "key", "create", "--key", key_uri_, "--pkcs11-module", DEVID_SOFTHSM2_MODULE});
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
    ASSERT_TRUE(CertifyDeviceKey(*server_, key_uri_, kDevice, Path("device.csr"),
                                 Path("device.pem"), {},
                                 {"--pkcs11-module", DEVID_SOFTHSM2_MODULE}));
    ASSERT_EQ(EstCurl(*server_, "cacerts", "", Path("cacerts.b64")), "200");
    cacerts_pem_ = Pkcs7ToPem(Path("cacerts.b64"));
  }

  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }

  CommandResult Renew(const std::vector<std::string>& extra, const std::string& endpoint = "") {
    std::vector<std::string> args = {
        "device",          "renew",
        "--cert",          Path("device.pem"),
        "--key",           key_uri_,
        "--pkcs11-module", DEVID_SOFTHSM2_MODULE,
        "--endpoint",      endpoint.empty() ? server_->device_endpoint() : endpoint,
        "--trust-bundle",  server_->trust_bundle_file(),
        "--force"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Devid(args);
  }

  // Pkcs11Tool runs pkcs11-tool logged in to the test token with args and returns its output.
  std::string Pkcs11Tool(const std::string& args) {
    return Shell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE + " --token-label " +
                 SoftHsmToken::kLabel + " --login --pin " + SoftHsmToken::kPin + " " + args);
  }
  std::string PrivateKeyListing() { return Pkcs11Tool("--list-objects --type privkey"); }
  // TokenPublicKey is the PEM public key of the token's key pair labelled object.
  std::string TokenPublicKey(const std::string& object) {
    std::string der = Path(object + ".pub.der");
    Pkcs11Tool("--read-object --type pubkey --label " + object + " -o " + der);
    return Shell("openssl pkey -pubin -inform DER -in " + der);
  }
  std::string CertificatePublicKey(const std::string& pem) {
    return Shell("openssl x509 -noout -pubkey -in " + pem);
  }

  SoftHsmToken token_;  // first: devid's children read SOFTHSM2_CONF, which it sets
  std::optional<ServerProcess> server_;
  std::string key_uri_;
  std::string cacerts_pem_;
};

TEST_F(DeviceRenewHsmTest, SameKey_RenewsWithTheTokenKey) {
  std::string old_pem = Path("old.pem");
  ASSERT_EQ(RunShell("cp " + Path("device.pem") + " " + old_pem), 0);
  CommandResult renewed = Renew({"--same-key"});
  ASSERT_EQ(renewed.exit_code, 0) << Describe(renewed);
  EXPECT_THAT(renewed.out, HasSubstr("for the same key"));

  std::string device_pem = Path("device.pem");
  EXPECT_THAT(Shell("openssl verify -x509_strict -purpose sslclient -CAfile " + cacerts_pem_ + " " +
                    device_pem),
              HasSubstr(": OK"));
  EXPECT_NE(Shell("openssl x509 -noout -serial -in " + device_pem),
            Shell("openssl x509 -noout -serial -in " + old_pem));
  EXPECT_EQ(Shell("openssl x509 -noout -subject -nameopt RFC2253 -in " + device_pem),
            std::string("subject=CN=") + kDevice + "\n");
  EXPECT_EQ(Shell("openssl x509 -noout -pubkey -in " + device_pem),
            Shell("openssl x509 -noout -pubkey -in " + old_pem));
}

int Count(const std::string& text, const std::string& what) {
  int count = 0;
  for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++count;
  return count;
}

TEST_F(DeviceRenewHsmTest, NewKey_ByDefault_RotatesTheKeyInsideTheToken) {
  std::string old_pem = Path("old.pem");
  ASSERT_EQ(RunShell("cp " + Path("device.pem") + " " + old_pem), 0);
  ASSERT_EQ(TokenPublicKey("device-key"), CertificatePublicKey(old_pem));
  CommandResult renewed = Renew({});
  ASSERT_EQ(renewed.exit_code, 0) << Describe(renewed);
  EXPECT_THAT(renewed.out, HasSubstr("for a new key"));

  std::string device_pem = Path("device.pem");
  EXPECT_THAT(Shell("openssl verify -x509_strict -purpose sslclient -CAfile " + cacerts_pem_ + " " +
                    device_pem),
              HasSubstr(": OK"));
  EXPECT_EQ(Shell("openssl x509 -noout -subject -nameopt RFC2253 -in " + device_pem),
            std::string("subject=CN=") + kDevice + "\n");
  EXPECT_NE(CertificatePublicKey(device_pem), CertificatePublicKey(old_pem));
  // One private key is left, under the old label, still sensitive and never extractable, and it
  // is the new certificate's key: the old key object is gone.
  std::string listing = PrivateKeyListing();
  EXPECT_EQ(Count(listing, "Private Key Object"), 1) << listing;
  EXPECT_THAT(listing, HasSubstr("label:      device-key\n"));
  EXPECT_THAT(listing, Not(HasSubstr("device-key.next")));
  EXPECT_THAT(listing, HasSubstr("Access:     sensitive, always sensitive, never extractable"));
  EXPECT_EQ(Count(Pkcs11Tool("--list-objects --type pubkey"), "Public Key Object"), 1);
  EXPECT_EQ(TokenPublicKey("device-key"), CertificatePublicKey(device_pem));
  EXPECT_FALSE(std::filesystem::exists(device_pem + ".next"));

  // The rotated key authenticates the next renewal.
  CommandResult again = Renew({});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(TokenPublicKey("device-key"), CertificatePublicKey(device_pem));
  EXPECT_EQ(Count(PrivateKeyListing(), "Private Key Object"), 1);
}

TEST_F(DeviceRenewHsmTest, NewKey_ServerUnreachable_LeavesTheTokenAndTheFiles) {
  auto before = ReadFile(Path("device.pem"));
  ASSERT_TRUE(before);
  std::string listing = PrivateKeyListing();
  CommandResult failed = Renew({}, "https://127.0.0.1:1");
  EXPECT_EQ(failed.exit_code, 1) << Describe(failed);
  EXPECT_THAT(failed.err, HasSubstr("connecting to https://127.0.0.1:1"));
  EXPECT_THAT(failed.err, HasSubstr("The current certificate and key are unchanged and in use"));
  auto after = ReadFile(Path("device.pem"));
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(PrivateKeyListing(), listing);
  EXPECT_FALSE(std::filesystem::exists(Path("device.pem.next")));
}

TEST_F(DeviceRenewHsmTest, Enroll_WithTheTokensSasKey_GetsAFirstCertificateForANewTokenKey) {
  CommandResult added =
      Devid({"enrollment", "add", "--registration-id", kEnrolledDevice, "--primary-key",
             kEnrolledDeviceKey, "--connection", server_->connection_file()});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  std::string sas_file = Path("sas.key");
  ASSERT_TRUE(WriteFileAtomically(sas_file, std::string(kEnrolledDeviceKey) + "\n", 0600));
  std::string sas_uri = std::string("pkcs11:token=") + SoftHsmToken::kLabel +
                        ";object=sas-key?pin-source=" + token_.pin_file();
  CommandResult imported =
      Devid({"device", "key", "import-symmetric", "--key", sas_uri, "--pkcs11-module",
             DEVID_SOFTHSM2_MODULE, "--symmetric-key-file", sas_file});
  ASSERT_EQ(imported.exit_code, 0) << Describe(imported);
  std::filesystem::remove(sas_file);

  std::string enrolled_pem = Path("enrolled.pem");
  CommandResult enrolled = Devid(
      {"device", "enroll", "--pkcs11", sas_uri, "--pkcs11-module", DEVID_SOFTHSM2_MODULE, "--key",
       std::string("pkcs11:token=") + SoftHsmToken::kLabel +
           ";object=enrolled-key?pin-source=" + token_.pin_file(),
       "--cert-out", enrolled_pem, "--registration-id", kEnrolledDevice, "--id-scope",
       server_->id_scope(), "--endpoint", server_->device_endpoint(), "--trust-bundle",
       server_->trust_bundle_file()});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
  EXPECT_THAT(enrolled.out, HasSubstr("first certificate"));
  EXPECT_THAT(Shell("openssl verify -x509_strict -purpose sslclient -CAfile " + cacerts_pem_ + " " +
                    enrolled_pem),
              HasSubstr(": OK"));
  EXPECT_EQ(Shell("openssl x509 -noout -subject -nameopt RFC2253 -in " + enrolled_pem),
            std::string("subject=CN=") + kEnrolledDevice + "\n");
  EXPECT_EQ(TokenPublicKey("enrolled-key"), CertificatePublicKey(enrolled_pem));
  EXPECT_THAT(PrivateKeyListing(), HasSubstr("label:      enrolled-key\n"));
}

}  // namespace
}  // namespace devid::testing
