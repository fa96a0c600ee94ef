// X.509 attestation against the real `devid serve` over mutual TLS: a third-party PKI made with
// openssl (root, intermediate, device leaves), an enrollment group trusting the root, and curl
// and openssl s_client as the devices. Each refusal leaves no registration behind.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/file.h"
#include "dps_client.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "mtls_device.h"
#include "server_process.h"
#include "vendor_pki.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using nlohmann::json;
using ::testing::HasSubstr;

// The PKI: root and intermediate CAs as RFC 5280 wants them, and leaves named by registration ID.
constexpr char kMakePki[] = R"sh(
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -subj /CN=Vendor-Root -days 3650 -out root.pem -config ext.cnf -extensions root
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key \
  -subj /CN=Vendor-Intermediate -out int.csr -config ext.cnf
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1000 \
  -extfile ext.cnf -extensions intermediate -out int.pem
leaf() {
  openssl req -new -newkey $3 -nodes -keyout $1.key -subj /CN=$1 -out $1.csr -config ext.cnf
  openssl x509 -req -in $1.csr -CA int.pem -CAkey int.key -CAcreateserial -days 365 \
    -extfile ext.cnf -extensions $2 -out $1.pem
  cat $1.pem int.pem > $1.chain.pem
}
leaf x509-it-1 device "ec -pkeyopt ec_paramgen_curve:P-256"
leaf x509-it-noauth server "ec -pkeyopt ec_paramgen_curve:P-256"
leaf x509-it-rsa1024 device rsa:1024
)sh";

class X509RegistrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = ServerProcess::Start();
    ASSERT_TRUE(started.has_value()) << started.error().message();
    server_ = new ServerProcess(std::move(*started));
    pki_ = server_->root() + "/vendor-pki";
    std::string output;
    ASSERT_EQ(RunShell("mkdir -p " + pki_ + " && cd " + pki_ + " && (" +
                           WriteVendorPkiConfig("ext.cnf") + kMakePki + ") 2>&1",
                       &output),
              0)
        << output;
    auto root = ReadFile(pki_ + "/root.pem");
    ASSERT_TRUE(root);
    DpsClient client(*server_);
    ASSERT_TRUE(client.connected());
    json group = {{"enrollmentGroupId", "vendor-devices"},
                  {"attestation",
                   {{"type", "x509"},
                    {"x509", {{"signingCertificates", {{"primary", {{"certificate", *root}}}}}}}}}};
    auto created = client.Service("PUT", "/enrollmentGroups/vendor-devices", group);
    ASSERT_TRUE(created) << created.error().message();
    ASSERT_EQ(created->status, 200) << created->body;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static bool Registered(const std::string& reg_id) {
    DpsClient client(*server_);
    auto got = client.Service("GET", "/registrations/" + reg_id);
    return got && got->status == 200;
  }

  static ServerProcess* server_;
  static std::string pki_;
};

ServerProcess* X509RegistrationTest::server_ = nullptr;
std::string X509RegistrationTest::pki_;

TEST_F(X509RegistrationTest, GroupDevice_RegistersWithLeafAndIntermediate) {
  const std::string cert = pki_ + "/x509-it-1.chain.pem";
  const std::string key = pki_ + "/x509-it-1.key";
  DeviceReply registered = RegisterAsDevice(*server_, "x509-it-1", cert, key);
  ASSERT_EQ(registered.status, 202) << registered.body;
  std::string operation = json::parse(registered.body)["operationId"];
  DeviceReply status =
      CurlAsDevice(*server_, "GET", "/registrations/x509-it-1/operations/" + operation, cert, key);
  ASSERT_EQ(status.status, 200) << status.body;
  json state = json::parse(status.body)["registrationState"];
  EXPECT_EQ(state["status"], "assigned");
  EXPECT_EQ(state["x509"]["enrollmentGroupId"], "vendor-devices");
  EXPECT_EQ(state["x509"]["certificateInfo"]["subjectName"], "CN=x509-it-1");
  EXPECT_EQ(state["x509"]["signingCertificateInfo"]["subjectName"], "CN=Vendor-Root");
  // Discovery: the vendor's certificate is in the inventory as observed.
  CommandResult seen = RunCommand({DEVID_BINARY, "cert", "list", "--device", "x509-it-1", "-o",
                                   "json", "--connection", server_->connection_file()});
  EXPECT_THAT(seen.out, HasSubstr("\"source\": \"observed\""));
}

TEST_F(X509RegistrationTest, Refuses_CertificateOfAnotherDevice) {
  DeviceReply reply = RegisterAsDevice(*server_, "x509-it-2", pki_ + "/x509-it-1.chain.pem",
                                       pki_ + "/x509-it-1.key");
  EXPECT_EQ(reply.status, 401);
  EXPECT_THAT(reply.body, HasSubstr("is not the registration ID"));
  EXPECT_FALSE(Registered("x509-it-2"));
}

TEST_F(X509RegistrationTest, Refuses_ChainWithoutItsIntermediate) {
  DeviceReply reply =
      RegisterAsDevice(*server_, "x509-it-1", pki_ + "/x509-it-1.pem", pki_ + "/x509-it-1.key");
  EXPECT_EQ(reply.status, 401);
  EXPECT_THAT(reply.body, HasSubstr("unable to get local issuer certificate"));
}

TEST_F(X509RegistrationTest, Refuses_LeafWithoutClientAuthAndRsa1024) {
  DeviceReply noauth = RegisterAsDevice(
      *server_, "x509-it-noauth", pki_ + "/x509-it-noauth.chain.pem", pki_ + "/x509-it-noauth.key");
  EXPECT_EQ(noauth.status, 401);
  EXPECT_THAT(noauth.body, HasSubstr("unsuitable certificate purpose"));
  EXPECT_FALSE(Registered("x509-it-noauth"));
  // curl's TLS library refuses to send an RSA-1024 key at its default security level; s_client
  // at a lowered level sends it, and devid refuses it.
  DeviceReply rsa =
      SClientRegisterAsDevice(*server_, "x509-it-rsa1024", pki_ + "/x509-it-rsa1024.chain.pem",
                              pki_ + "/x509-it-rsa1024.key",
                              "-cert_chain " + pki_ + "/int.pem -cipher DEFAULT:@SECLEVEL=0");
  EXPECT_EQ(rsa.status, 401);
  EXPECT_THAT(rsa.body, HasSubstr("RSA key of 1024 bits"));
  EXPECT_FALSE(Registered("x509-it-rsa1024"));
}

// openssl s_client as the device: a self-signed certificate named like the device, which no
// enrollment trusts, is refused over a raw TLS connection too.
TEST_F(X509RegistrationTest, Refuses_OverOpensslSClient_UntrustedSelfSignedCertificate) {
  std::string made;
  ASSERT_EQ(RunShell("cd " + pki_ +
                         " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                         "-keyout self.key -subj /CN=x509-it-3 -days 30 -out self.pem -addext "
                         "extendedKeyUsage=clientAuth 2>&1",
                     &made),
            0)
      << made;
  DeviceReply reply =
      SClientRegisterAsDevice(*server_, "x509-it-3", pki_ + "/self.pem", pki_ + "/self.key");
  EXPECT_EQ(reply.status, 401);
  EXPECT_THAT(reply.body, HasSubstr("does not validate: self-signed certificate"));
  EXPECT_FALSE(Registered("x509-it-3"));
}

}  // namespace
}  // namespace devid::testing
