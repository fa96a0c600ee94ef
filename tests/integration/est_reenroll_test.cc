// EST (RFC 7030) with TLS client certificates against the real `devid serve`, driven by curl and
// checked with openssl: simplereenroll and simpleenroll authenticated by the certificate devid
// issued (curl --cert/--key), serverkeygen's multipart answer, csrattrs, and the refusals of a
// revoked, foreign or missing client certificate.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "keys/testing/softhsm_token.h"  // RunShell
#include "est_client.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;

constexpr char kDevice[] = "est-renew-1";
constexpr char kDeviceKey[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class EstReenrollTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerProcessOptions options;
    options.config_toml = "[ca]\nbase_url = \"https://localhost\"\n";
    server_ = StartServerWithSasEnrollments(std::move(options), {kDevice}, kDeviceKey);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = TestDir(*server_, "est-renew-");
    ASSERT_EQ(Curl("cacerts", "", dir_ + "/cacerts.b64"), "200");
    ca_pem_ = Pkcs7ToPem(dir_ + "/cacerts.b64");
  }

  static std::string Token() { return DeviceSasToken(*server_, kDevice, kDeviceKey); }

  std::string Curl(const std::string& operation, const std::string& args,
                   const std::string& body_file) {
    return EstCurl(*server_, operation, args, body_file);
  }

  // Post posts the base64 request in csr_file to operation, authenticated by the SAS token when
  // sas is set and by the client certificate (PEM files) when client is not empty.
  std::string Post(const std::string& operation, const std::string& csr_file, bool sas,
                   const std::pair<std::string, std::string>& client, const std::string& body_file,
                   const std::string& extra_args = "") {
    std::string args = "-X POST -H 'Content-Type: application/pkcs10' --data-binary @" + csr_file;
    if (sas) args += " -H 'Authorization: " + Token() + "'";
    if (!client.first.empty()) args += " --cert " + client.first + " --key " + client.second;
    return Curl(operation, args + " " + extra_args, body_file);
  }

  // NewCsr writes a fresh P-256 key (<name>.key) and a base64 DER request for CN=cn; returns the
  // request's path.
  std::string NewCsr(const std::string& name, const std::string& cn = kDevice) {
    return MakeCsrBase64(dir_, name, cn);
  }

  // EnrollWithSas gets a certificate for kDevice; returns (certificate PEM, key PEM) paths.
  std::pair<std::string, std::string> EnrollWithSas(const std::string& name) {
    std::string body = dir_ + "/" + name + ".p7.b64";
    EXPECT_EQ(Post("simpleenroll", NewCsr(name), true, {}, body), "200") << ReadFile(body);
    std::string certificate = Pkcs7ToPem(body);
    ExpectVerifies(certificate);
    return {certificate, dir_ + "/" + name + ".key"};
  }

  // ExpectVerifies runs openssl verify in strict mode for TLS client use against cacerts.
  void ExpectVerifies(const std::string& certificate_pem) {
    std::string output;
    EXPECT_EQ(RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + ca_pem_ + " " +
                           certificate_pem,
                       &output),
              0)
        << output;
  }

  std::string Subject(const std::string& certificate_pem) {
    return Shell("openssl x509 -in " + certificate_pem + " -noout -subject -nameopt RFC2253");
  }
  std::string CertificatePublicKey(const std::string& certificate_pem) {
    return Shell("openssl x509 -in " + certificate_pem + " -noout -pubkey");
  }
  std::string KeyPublicKey(const std::string& key_file, const std::string& inform = "PEM") {
    return Shell("openssl pkey -inform " + inform + " -in " + key_file + " -pubout");
  }

  static ServerProcess* server_;
  std::string dir_;
  std::string ca_pem_;
};

ServerProcess* EstReenrollTest::server_ = nullptr;

TEST_F(EstReenrollTest, SimpleReenroll_WithTheIssuedCertificate_RenewsTheSubjectWithANewKey) {
  auto current = EnrollWithSas("current");
  ExpectVerifies(current.first);
  std::string body = dir_ + "/renewed.p7.b64";
  ASSERT_EQ(Post("simplereenroll", NewCsr("renewed"), false, current, body), "200")
      << ReadFile(body);
  std::string renewed = Pkcs7ToPem(body);
  ExpectVerifies(renewed);
  EXPECT_EQ(Subject(renewed), Subject(current.first));
  EXPECT_EQ(Subject(renewed), std::string("subject=CN=") + kDevice + "\n");
  EXPECT_EQ(CertificatePublicKey(renewed), KeyPublicKey(dir_ + "/renewed.key"));
  EXPECT_NE(CertificatePublicKey(renewed), CertificatePublicKey(current.first));

  // The renewed certificate renews in turn.
  std::string again = dir_ + "/again.p7.b64";
  EXPECT_EQ(Post("simplereenroll", NewCsr("again"), false, {renewed, dir_ + "/renewed.key"}, again),
            "200")
      << ReadFile(again);
  ExpectVerifies(Pkcs7ToPem(again));
}

TEST_F(EstReenrollTest, SimpleEnroll_WithTheIssuedCertificateInsteadOfASasToken) {
  auto current = EnrollWithSas("current");
  std::string body = dir_ + "/next.p7.b64";
  ASSERT_EQ(Post("simpleenroll", NewCsr("next"), false, current, body), "200") << ReadFile(body);
  std::string next = Pkcs7ToPem(body);
  ExpectVerifies(next);
  EXPECT_EQ(Subject(next), Subject(current.first));
}

TEST_F(EstReenrollTest, SimpleReenroll_Rejects_NoClientCertificate) {
  std::string body = dir_ + "/body";
  EXPECT_EQ(Post("simplereenroll", NewCsr("x"), true, {}, body), "401");
  EXPECT_THAT(ReadFile(body), HasSubstr("needs the certificate being renewed"));
}

TEST_F(EstReenrollTest, SimpleReenroll_Rejects_RevokedCertificate) {
  auto current = EnrollWithSas("current");
  std::string serial = Shell("openssl x509 -in " + current.first + " -noout -serial | cut -d= -f2");
  serial.erase(serial.find_last_not_of('\n') + 1);
  CommandResult revoked =
      RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", serial, "--reason", "keyCompromise",
                  "--connection", server_->connection_file()});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);
  std::string body = dir_ + "/body";
  EXPECT_EQ(Post("simplereenroll", NewCsr("x"), false, current, body), "403");
  EXPECT_THAT(ReadFile(body), HasSubstr("was revoked at"));
  EXPECT_THAT(ReadFile(body), HasSubstr("keyCompromise"));
  EXPECT_EQ(Post("serverkeygen", NewCsr("y"), false, current, body), "403");
}

TEST_F(EstReenrollTest, SimpleReenroll_Rejects_ForeignCertificate) {
  // A CA of the device maker's own, with a client certificate naming the same device.
  Shell("cd " + dir_ +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-subj '/CN=Other CA' -days 2 -out ca.pem 2>/dev/null"
        " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout foreign.key -subj /CN=" +
        std::string(kDevice) +
        " -out foreign.csr 2>/dev/null"
        " && printf 'extendedKeyUsage=clientAuth\\nkeyUsage=critical,digitalSignature\\n' > ext"
        " && openssl x509 -req -in foreign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
        "-extfile ext -out foreign.pem 2>/dev/null");
  std::string body = dir_ + "/body";
  EXPECT_EQ(Post("simplereenroll", NewCsr("x"), false,
                 {dir_ + "/foreign.pem", dir_ + "/foreign.key"}, body),
            "401");
  EXPECT_THAT(ReadFile(body), HasSubstr("was not issued by devid's CA"));
  EXPECT_EQ(Post("simpleenroll", NewCsr("y"), false, {dir_ + "/foreign.pem", dir_ + "/foreign.key"},
                 body),
            "401");
  // Discovery: the foreign certificate is in the inventory as observed.
  std::string fingerprint = Shell("openssl x509 -in " + dir_ +
                                  "/foreign.pem -noout -fingerprint -sha256 | cut -d= -f2 "
                                  "| tr -d ':\\n'");
  CommandResult shown = RunCommand(
      {DEVID_BINARY, "cert", "show", fingerprint, "--connection", server_->connection_file()});
  EXPECT_EQ(shown.exit_code, 0) << Describe(shown);
  EXPECT_THAT(shown.out, HasSubstr("observed"));
}

// Parts splits a multipart/mixed body into (headers, content) parts.
std::vector<std::pair<std::string, std::string>> Parts(const std::string& body,
                                                       const std::string& boundary) {
  std::vector<std::pair<std::string, std::string>> parts;
  std::string delimiter = "--" + boundary;
  size_t at = body.find(delimiter);
  while (at != std::string::npos && body.compare(at + delimiter.size(), 2, "--") != 0) {
    size_t start = at + delimiter.size() + 2;
    size_t next = body.find("\r\n" + delimiter, start);
    if (next == std::string::npos) break;
    std::string part = body.substr(start, next - start);
    size_t blank = part.find("\r\n\r\n");
    if (blank == std::string::npos) break;
    parts.emplace_back(part.substr(0, blank), part.substr(blank + 4));
    at = next + 2;
  }
  return parts;
}

TEST_F(EstReenrollTest, ServerKeyGen_ReturnsAKeyThatMatchesItsCertificate) {
  for (bool by_certificate : {false, true}) {
    SCOPED_TRACE(by_certificate ? "by client certificate" : "by SAS token");
    std::pair<std::string, std::string> client;
    if (by_certificate) client = EnrollWithSas("client");
    std::string body = dir_ + "/keygen.multipart";
    ASSERT_EQ(Post("serverkeygen", NewCsr("placeholder"), !by_certificate, client, body,
                   "-D " + dir_ + "/keygen.headers"),
              "200")
        << ReadFile(body);
    std::string headers = ReadFile(dir_ + "/keygen.headers");
    size_t boundary_at = headers.find("boundary=");
    ASSERT_NE(boundary_at, std::string::npos) << headers;
    EXPECT_THAT(headers, HasSubstr("multipart/mixed"));
    std::string boundary = headers.substr(boundary_at + 9);
    boundary.erase(boundary.find_first_of("\r\n;"));
    auto parts = Parts(ReadFile(body), boundary);
    ASSERT_EQ(parts.size(), 2u) << ReadFile(body);
    EXPECT_THAT(parts[0].first, HasSubstr("Content-Type: application/pkcs8"));
    EXPECT_THAT(parts[1].first, HasSubstr("application/pkcs7-mime; smime-type=certs-only"));
    std::ofstream(dir_ + "/keygen.key.b64") << parts[0].second;
    std::ofstream(dir_ + "/keygen.p7.b64") << parts[1].second;
    Shell("openssl base64 -d -in " + dir_ + "/keygen.key.b64 -out " + dir_ + "/keygen.key.der");
    std::string certificate = Pkcs7ToPem(dir_ + "/keygen.p7.b64");
    ExpectVerifies(certificate);
    EXPECT_EQ(Subject(certificate), std::string("subject=CN=") + kDevice + "\n");
    EXPECT_EQ(KeyPublicKey(dir_ + "/keygen.key.der", "DER"), CertificatePublicKey(certificate));
    EXPECT_THAT(Shell("openssl pkey -inform DER -in " + dir_ + "/keygen.key.der -noout -text"),
                HasSubstr("prime256v1"));
    // The key is not the placeholder request's.
    EXPECT_NE(CertificatePublicKey(certificate), KeyPublicKey(dir_ + "/placeholder.key"));

    // The generated key and certificate work as a TLS client credential.
    std::string renewed = dir_ + "/renewed.p7.b64";
    Shell("openssl pkey -inform DER -in " + dir_ + "/keygen.key.der -out " + dir_ +
          "/keygen.key.pem");
    EXPECT_EQ(Post("simplereenroll", NewCsr("renewed"), false,
                   {certificate, dir_ + "/keygen.key.pem"}, renewed),
              "200")
        << ReadFile(renewed);
  }
  // The server's log never holds the key.
  std::string key_b64 = ReadFile(dir_ + "/keygen.key.b64");
  ASSERT_GT(key_b64.size(), 20u);
  EXPECT_EQ(server_->log().find(key_b64.substr(0, 20)), std::string::npos);
}

TEST_F(EstReenrollTest, CsrAttrs_AsksForAnEcdsaP256Key) {
  std::string body = dir_ + "/csrattrs.b64";
  ASSERT_EQ(Curl("csrattrs", "-D " + dir_ + "/headers", body), "200");
  EXPECT_THAT(ReadFile(dir_ + "/headers"), HasSubstr("application/csrattrs"));
  std::string parsed = Shell("openssl base64 -d -in " + body + " | openssl asn1parse -inform DER");
  EXPECT_THAT(parsed, HasSubstr("ecdsa-with-SHA256"));
  EXPECT_THAT(parsed, HasSubstr("id-ecPublicKey"));
  EXPECT_THAT(parsed, HasSubstr("prime256v1"));
}

TEST_F(EstReenrollTest, RequestClientCertificateOff_TheCertificateIsNotAskedForNorAccepted) {
  ServerProcessOptions options;
  options.config_toml = "[server]\nrequest_client_certificate = false\n";
  auto started = ServerProcess::Start(std::move(options));
  ASSERT_TRUE(started.has_value()) << started.error().message();
  CommandResult added = AddSasEnrollment(*started, kDevice, kDeviceKey);
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  std::string token = DeviceSasToken(*started, kDevice, kDeviceKey);
  auto post = [&](const std::string& operation, const std::string& csr, const std::string& auth,
                  const std::string& body) {
    std::string status;
    RunShell("curl -s --cacert " + started->trust_bundle_file() + " -o " + body +
                 " -w '%{http_code}' -X POST -H 'Content-Type: application/pkcs10' " + auth +
                 " --data-binary @" + csr + " " + started->device_endpoint() + "/.well-known/est/" +
                 operation,
             &status);
    return status;
  };
  std::string issued = dir_ + "/issued.p7.b64";
  ASSERT_EQ(post("simpleenroll", NewCsr("first"), "-H 'Authorization: " + token + "'", issued),
            "200")
      << ReadFile(issued);
  std::string client = "--cert " + Pkcs7ToPem(issued) + " --key " + dir_ + "/first.key";
  std::string body = dir_ + "/body";
  EXPECT_EQ(post("simplereenroll", NewCsr("second"), client, body), "401");
  EXPECT_THAT(ReadFile(body), HasSubstr("needs the certificate being renewed"));
}

}  // namespace
}  // namespace devid::testing
