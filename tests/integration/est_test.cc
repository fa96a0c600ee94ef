// EST (RFC 7030) against the real `devid serve`, driven by curl and checked with openssl: cacerts
// as certs-only PKCS #7, simpleenroll authorized by a device SAS token, and its rejections.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "keys/testing/softhsm_token.h"  // RunShell
#include "ossl/base64.h"
#include "est_client.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;

constexpr char kDeviceKey[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

class EstTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // `devid serve` makes its CA on first start; [ca] base_url goes into the CRL and OCSP
    // pointers of what it issues.
    server_ = StartServerWithSasEnrollments(
        {.config_toml = "[ca]\nbase_url = \"https://localhost\"\n"}, {"est-device-1"}, kDeviceKey);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = TestDir(*server_, "est-");
  }

  static std::string Token(const std::string& registration_id) {
    return DeviceSasToken(*server_, registration_id, kDeviceKey);
  }

  std::string Curl(const std::string& operation, const std::string& args,
                   const std::string& body_file) {
    return EstCurl(*server_, operation, args, body_file);
  }

  // Enroll posts the base64 request in csr_file with authorization ("" = none).
  std::string Enroll(const std::string& csr_file, const std::string& authorization,
                     const std::string& body_file) {
    std::string args = "-X POST -H 'Content-Type: application/pkcs10' --data-binary @" + csr_file;
    if (!authorization.empty()) args += " -H 'Authorization: " + authorization + "'";
    return Curl("simpleenroll", args, body_file);
  }

  std::string MakeCsrBase64(const std::string& cn,
                            const std::string& key_spec = "ec -pkeyopt ec_paramgen_curve:P-256") {
    return testing::MakeCsrBase64(dir_, cn, cn, key_spec);
  }

  static ServerProcess* server_;
  std::string dir_;
};

ServerProcess* EstTest::server_ = nullptr;

TEST_F(EstTest, CaCerts_IsCertsOnlyPkcs7OfIssuingAndRootCas) {
  std::string body = dir_ + "/cacerts.b64";
  ASSERT_EQ(Curl("cacerts", "-D " + dir_ + "/headers", body), "200");
  std::ifstream headers(dir_ + "/headers");
  std::stringstream text;
  text << headers.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("application/pkcs7-mime; smime-type=certs-only"));
  std::string pem = Pkcs7ToPem(body);
  std::string output;
  RunShell("grep -c 'BEGIN CERTIFICATE' " + pem, &output);
  EXPECT_EQ(output, "2\n");
  RunShell("openssl crl2pkcs7 -nocrl -certfile " + pem + " | openssl pkcs7 -print_certs -noout",
           &output);
  EXPECT_THAT(output, HasSubstr("subject=CN = devid issuing CA"));
  EXPECT_THAT(output, HasSubstr("subject=CN = devid root CA"));
}

TEST_F(EstTest, UnknownOperationsAre404) {
  EXPECT_EQ(Curl("fullcmc", "-X POST", dir_ + "/body"), "404");
}

TEST_F(EstTest, SimpleEnroll_WithDeviceSasToken_IssuesCertificateOpensslVerifies) {
  std::string cacerts = dir_ + "/cacerts.b64";
  ASSERT_EQ(Curl("cacerts", "", cacerts), "200");
  std::string ca_pem = Pkcs7ToPem(cacerts);

  std::string body = dir_ + "/issued.b64";
  ASSERT_EQ(Enroll(MakeCsrBase64("est-device-1"), Token("est-device-1"), body), "200");
  std::string leaf = Pkcs7ToPem(body);
  std::string output;
  ASSERT_EQ(
      RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + ca_pem + " " + leaf,
               &output),
      0)
      << output;
  RunShell("openssl x509 -in " + leaf + " -noout -subject -ext extendedKeyUsage", &output);
  EXPECT_THAT(output, HasSubstr("CN = est-device-1"));
  EXPECT_THAT(output, HasSubstr("TLS Web Client Authentication"));
}

TEST_F(EstTest, SimpleEnroll_Rejects_MissingCredentials) {
  std::string body = dir_ + "/body";
  EXPECT_EQ(Enroll(MakeCsrBase64("est-device-1"), "", body), "401");
  std::string output;
  RunShell("cat " + body, &output);
  EXPECT_THAT(output, HasSubstr("SAS token"));
}

TEST_F(EstTest, SimpleEnroll_Rejects_SubjectOtherThanTheTokensDevice) {
  std::string body = dir_ + "/body";
  EXPECT_EQ(Enroll(MakeCsrBase64("someone-else"), Token("est-device-1"), body), "403");
  std::string output;
  RunShell("cat " + body, &output);
  EXPECT_THAT(output, HasSubstr("is not the registration ID"));
}

TEST_F(EstTest, SimpleEnroll_Rejects_TokenSignedWithTheWrongKey) {
  std::string forged =
      DeviceSasToken(*server_, "est-device-1", "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  EXPECT_EQ(Enroll(MakeCsrBase64("est-device-1"), forged, dir_ + "/body"), "401");
}

TEST_F(EstTest, SimpleEnroll_Rejects_WeakKeys) {
  struct Case {
    const char* key_spec;
    const char* message;
  };
  for (const Case& c : {Case{"rsa:1024", "RSA key of 1024 bits"},
                        Case{"ec -pkeyopt ec_paramgen_curve:P-192", "only P-256 and P-384"}}) {
    std::string body = dir_ + "/body";
    EXPECT_EQ(Enroll(MakeCsrBase64("est-device-1", c.key_spec), Token("est-device-1"), body), "400")
        << c.key_spec;
    std::string output;
    RunShell("cat " + body, &output);
    EXPECT_THAT(output, HasSubstr(c.message));
  }
}

TEST_F(EstTest, SimpleEnroll_Rejects_RequestWithBadSignature) {
  std::string der = dir_ + "/bad.der";
  ASSERT_EQ(RunShell("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                     "-keyout /dev/null -subj /CN=est-device-1 -outform DER -out " +
                     der),
            0);
  std::ifstream in(der, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  bytes.back() ^= 0x01;  // the last byte belongs to the signature
  std::ofstream(der + ".b64") << ossl::Base64Encode(bytes) << "\n";
  std::string body = dir_ + "/body";
  EXPECT_EQ(Enroll(der + ".b64", Token("est-device-1"), body), "400");
  std::string output;
  RunShell("cat " + body, &output);
  EXPECT_THAT(output, HasSubstr("signature does not verify"));
}

// The inventory and revocation through `devid cert`, on certificates EST issued.
TEST_F(EstTest, CertCli_ListsShowsAndRevokesIssuedCertificates) {
  ASSERT_EQ(Enroll(MakeCsrBase64("est-device-1"), Token("est-device-1"), dir_ + "/a.b64"), "200");
  ASSERT_EQ(Enroll(MakeCsrBase64("est-device-1"), Token("est-device-1"), dir_ + "/b.b64"), "200");
  std::string serial;
  RunShell("openssl x509 -in " + Pkcs7ToPem(dir_ + "/a.b64") + " -noout -serial | cut -d= -f2",
           &serial);
  serial.erase(serial.find_last_not_of("\n") + 1);
  ASSERT_FALSE(serial.empty());
  const std::string connection = server_->connection_file();
  auto devid = [&](std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    args.insert(args.end(), {"--connection", connection});
    return RunCommand(args);
  };

  CommandResult listed = devid({"cert", "list", "--device", "est-device-1", "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  auto items = nlohmann::json::parse(listed.out);
  EXPECT_GE(items.size(), 2u);
  for (const auto& item : items) {
    EXPECT_EQ(item["subject"], "CN=est-device-1");
    EXPECT_EQ(item["profile"], "device-client");
  }
  // The server's own TLS certificate is in the inventory too.
  CommandResult all = devid({"cert", "list"});
  EXPECT_THAT(all.out, HasSubstr("CN=localhost"));

  CommandResult shown = devid({"cert", "show", serial});
  ASSERT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("est-device-1"));
  EXPECT_THAT(shown.out, HasSubstr("BEGIN CERTIFICATE"));

  CommandResult revoked = devid({"cert", "revoke", "--serial", serial, "--reason", "keyCompromise"});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);
  EXPECT_THAT(revoked.out, HasSubstr("revoked"));
  CommandResult revoked_list = devid({"cert", "list", "--revoked", "-o", "json"});
  auto revoked_items = nlohmann::json::parse(revoked_list.out);
  ASSERT_EQ(revoked_items.size(), 1u);
  EXPECT_EQ(revoked_items[0]["serialNumber"], serial);
  EXPECT_EQ(revoked_items[0]["revocationReason"], "keyCompromise");

  // Within 30 days nothing expires (a year's lifetime); within 400 days every unrevoked one does.
  CommandResult soon = devid({"cert", "list", "--expiring", "30d", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(soon.out).size(), 0u) << soon.out;
  CommandResult later = devid({"cert", "list", "--expiring", "400d", "-o", "json"});
  for (const auto& item : nlohmann::json::parse(later.out)) EXPECT_NE(item["status"], "revoked");
}

TEST_F(EstTest, CertCli_RefusesUnknownSerialAndBadReasonWithoutChanges) {
  const std::string connection = server_->connection_file();
  CommandResult before = RunCommand({DEVID_BINARY, "cert", "list", "--revoked", "-o", "json",
                                     "--connection", connection});
  CommandResult unknown = RunCommand(
      {DEVID_BINARY, "cert", "revoke", "--serial", "0BADC0FFEE", "--connection", connection});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no certificate devid issued matches serialNumber"));
  EXPECT_THAT(unknown.err, HasSubstr("CertificateNotFound 404005"));
  CommandResult reason = RunCommand({DEVID_BINARY, "cert", "revoke", "--device", "est-device-1",
                                     "--reason", "stolen", "--connection", connection});
  EXPECT_EQ(reason.exit_code, 1);
  EXPECT_THAT(reason.err, HasSubstr("unknown revocation reason"));
  CommandResult two = RunCommand({DEVID_BINARY, "cert", "revoke", "--device", "est-device-1",
                                  "--serial", "01", "--connection", connection});
  EXPECT_EQ(two.exit_code, 1);
  EXPECT_THAT(two.err, HasSubstr("exactly one"));
  CommandResult after = RunCommand({DEVID_BINARY, "cert", "list", "--revoked", "-o", "json",
                                    "--connection", connection});
  EXPECT_EQ(after.out, before.out);
}

}  // namespace
}  // namespace devid::testing
