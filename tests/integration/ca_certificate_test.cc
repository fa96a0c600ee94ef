// CA certificates with proof of possession against the real `devid serve` over TLS: a vendor PKI
// made with openssl, the `devid ca-certificate` CLI for upload, code and verification, the proof
// certificate made with `openssl req` / `openssl x509`, an enrollment group over the verified root
// (`devid group add --ca-reference`), and curl as the device presenting leaf + intermediate.

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

// The vendor PKI: root, intermediate, one device leaf named by its registration ID.
constexpr char kMakePki[] = R"sh(
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -subj /CN=Pop-Vendor-Root -days 3650 -out root.pem -config ext.cnf -extensions root
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key \
  -subj /CN=Pop-Vendor-Intermediate -out int.csr -config ext.cnf
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1000 \
  -extfile ext.cnf -extensions intermediate -out int.pem
for id in ca-it-1 ca-it-2; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $id.key \
    -subj /CN=$id -out $id.csr -config ext.cnf
  openssl x509 -req -in $id.csr -CA int.pem -CAkey int.key -CAcreateserial -days 365 \
    -extfile ext.cnf -extensions device -out $id.pem
  cat $id.pem int.pem > $id.chain.pem
done
)sh";

class CaCertificateTest : public ::testing::Test {
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
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    args.insert(args.end(), {"--connection", server_->connection_file()});
    return RunCommand(args);
  }

  static json ParseJson(const CommandResult& r) {
    json parsed = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << Describe(r);
    return parsed;
  }

  // Proof makes <name>.pem: a certificate with subject CN=code signed by ca_key under ca_pem, as
  // an operator would with openssl.
  static std::string Proof(const std::string& name, const std::string& code,
                           const std::string& ca_pem, const std::string& ca_key) {
    std::string output;
    std::string command = "cd " + pki_ +
                          " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                          " -keyout " +
                          name + ".key -subj /CN=" + code + " -out " + name +
                          ".csr -config ext.cnf && openssl x509 -req -in " + name + ".csr -CA " +
                          ca_pem + " -CAkey " + ca_key + " -CAcreateserial -days 1 -out " + name +
                          ".pem";
    EXPECT_EQ(RunShell("(" + command + ") 2>&1", &output), 0) << output;
    return pki_ + "/" + name + ".pem";
  }

  // Register sends reg_id's register request with its client certificate chain.
  static DeviceReply Register(const std::string& reg_id) {
    return RegisterAsDevice(*server_, reg_id, pki_ + "/" + reg_id + ".chain.pem",
                            pki_ + "/" + reg_id + ".key");
  }

  static bool Registered(const std::string& reg_id) {
    DpsClient client(*server_);
    auto got = client.Service("GET", "/registrations/" + reg_id);
    return got && got->status == 200;
  }

  // VerifiedRoot uploads the vendor root as name and proves possession of its key.
  static void VerifyRoot(const std::string& name) {
    CommandResult code = Devid({"ca-certificate", "verification-code", name, "-o", "json"});
    ASSERT_EQ(code.exit_code, 0) << Describe(code);
    std::string proof = Proof(name + "-proof", ParseJson(code).value("verificationCode", ""),
                              "root.pem", "root.key");
    CommandResult verified = Devid({"ca-certificate", "verify", name, "--certificate", proof});
    ASSERT_EQ(verified.exit_code, 0) << Describe(verified);
  }

  static ServerProcess* server_;
  static std::string pki_;
};

ServerProcess* CaCertificateTest::server_ = nullptr;
std::string CaCertificateTest::pki_;

TEST_F(CaCertificateTest, RegistersLeafAndIntermediateThroughGroupOverVerifiedRoot) {
  CommandResult added = Devid(
      {"ca-certificate", "add", "vendor-root", "--certificate", pki_ + "/root.pem", "-o", "json"});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  EXPECT_EQ(ParseJson(added).value("isVerified", true), false);
  EXPECT_EQ(ParseJson(added).value("subject", ""), "CN=Pop-Vendor-Root");

  // Unverified, it cannot back a group.
  CommandResult early =
      Devid({"group", "add", "--group-id", "pop-vendor", "--ca-reference", "vendor-root"});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_THAT(early.err, HasSubstr("is not verified"));
  EXPECT_THAT(early.err, HasSubstr("400010"));

  CommandResult code = Devid({"ca-certificate", "verification-code", "vendor-root", "-o", "json"});
  ASSERT_EQ(code.exit_code, 0) << Describe(code);
  std::string value = ParseJson(code).value("verificationCode", "");
  ASSERT_EQ(value.size(), 32u) << code.out;

  // Signed by the intermediate's key instead of the root's: no proof.
  std::string wrong = Proof("wrong-signer", value, "int.pem", "int.key");
  CommandResult refused =
      Devid({"ca-certificate", "verify", "vendor-root", "--certificate", wrong});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("not signed by this CA's key"));
  EXPECT_THAT(refused.err, HasSubstr("400009"));

  std::string proof = Proof("root-proof", value, "root.pem", "root.key");
  CommandResult verified =
      Devid({"ca-certificate", "verify", "vendor-root", "--certificate", proof, "-o", "json"});
  ASSERT_EQ(verified.exit_code, 0) << Describe(verified);
  EXPECT_EQ(ParseJson(verified).value("isVerified", false), true);

  // The code answered once.
  CommandResult reused = Devid({"ca-certificate", "verify", "vendor-root", "--certificate", proof});
  EXPECT_NE(reused.exit_code, 0);
  EXPECT_THAT(reused.err, HasSubstr("no verification code is pending"));

  CommandResult group = Devid(
      {"group", "add", "--group-id", "pop-vendor", "--ca-reference", "vendor-root", "-o", "json"});
  ASSERT_EQ(group.exit_code, 0) << Describe(group);
  EXPECT_EQ(ParseJson(group)["attestation"]["x509"]["caReferences"]["primary"], "vendor-root");

  DeviceReply registered = Register("ca-it-1");
  ASSERT_EQ(registered.status, 202) << registered.body;
  std::string operation = json::parse(registered.body)["operationId"];
  DeviceReply status =
      CurlAsDevice(*server_, "GET", "/registrations/ca-it-1/operations/" + operation,
                   pki_ + "/ca-it-1.chain.pem", pki_ + "/ca-it-1.key");
  ASSERT_EQ(status.status, 200) << status.body;
  json state = json::parse(status.body)["registrationState"];
  EXPECT_EQ(state["status"], "assigned");
  EXPECT_EQ(state["x509"]["enrollmentGroupId"], "pop-vendor");
  EXPECT_EQ(state["x509"]["signingCertificateInfo"]["subjectName"], "CN=Pop-Vendor-Root");

  // In use: the CA stays.
  CommandResult deleted = Devid({"ca-certificate", "delete", "vendor-root"});
  EXPECT_NE(deleted.exit_code, 0);
  EXPECT_THAT(deleted.err, HasSubstr("references it"));
  EXPECT_THAT(deleted.err, HasSubstr("409002"));
  CommandResult list = Devid({"ca-certificate", "list"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_THAT(list.out, HasSubstr("vendor-root"));
  EXPECT_THAT(list.out, HasSubstr("yes"));
}

TEST_F(CaCertificateTest, Refuses_DeviceOnceItsCaIsReplacedAndUnverified) {
  auto root = ReadFile(pki_ + "/root.pem");
  ASSERT_TRUE(root);
  DpsClient client(*server_);
  ASSERT_TRUE(client.connected());
  auto uploaded = client.Service("PUT", "/caCertificates/replaced-root", {{"certificate", *root}});
  ASSERT_TRUE(uploaded);
  ASSERT_EQ(uploaded->status, 200) << uploaded->body;
  VerifyRoot("replaced-root");
  json group = {{"enrollmentGroupId", "replaced-vendor"},
                {"registrationIdPrefix", "ca-it-2"},
                {"attestation",
                 {{"type", "x509"}, {"x509", {{"caReferences", {{"primary", "replaced-root"}}}}}}}};
  auto created = client.Service("PUT", "/enrollmentGroups/replaced-vendor", group);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 200) << created->body;
  // The first test's group also trusts this root; take it out of the way if it ran.
  (void)client.Service("DELETE", "/enrollmentGroups/pop-vendor");

  auto replaced = client.Service("PUT", "/caCertificates/replaced-root", {{"certificate", *root}});
  ASSERT_TRUE(replaced);
  ASSERT_EQ(replaced->status, 200) << replaced->body;
  DeviceReply refused = Register("ca-it-2");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.body, HasSubstr("is not verified"));
  EXPECT_FALSE(Registered("ca-it-2"));

  VerifyRoot("replaced-root");
  DeviceReply registered = Register("ca-it-2");
  EXPECT_EQ(registered.status, 202) << registered.body;
}

}  // namespace
}  // namespace devid::testing
