// CRL and OCSP (RFC 5280 §5, RFC 6960) against the real `devid serve`, checked with the relying
// party tools people use: a device certificate from EST, then `openssl ocsp` and
// `openssl verify -crl_check` with the CRL fetched by curl from the certificate's own CRL
// distribution point, before and after `devid cert revoke`; and, on PostgreSQL, two nodes sharing
// one CA, where a revocation through one shows at once in the other's OCSP answers.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "base/clock.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/postgres/testing/test_database.h"
#include "est_client.h"
#include "loopback_socket.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceKey[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

class RevocationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    port_ = FreePort();
    // With a fixed port and no [ca] base_url, certificates point at https://localhost:<port>.
    ServerProcessOptions options;
    options.args = {"--listen", "127.0.0.1:" + std::to_string(port_)};
    server_ = StartServerWithSasEnrollments(std::move(options), {"rev-device-1", "rev-device-2"},
                                            kDeviceKey);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = TestDir(*server_, "rev-");
  }

  // Base is where issued certificates point: this server over TLS, or its plain-HTTP revocation
  // listener (PlainHttpRevocationTest).
  static std::string Base() {
    return (plain_http_ ? "http://localhost:" : "https://localhost:") + std::to_string(port_);
  }

  static std::string Shell(const std::string& command, int expected_exit = 0) {
    std::string output;
    int exit_code = RunShell(command, &output);
    EXPECT_EQ(exit_code, expected_exit) << command << "\n" << output;
    return output;
  }

  // Curl fetches url into file and returns the HTTP status.
  static std::string Curl(const std::string& url, const std::string& file,
                          const std::string& args = "") {
    std::string output;
    RunShell("curl -s --cacert " + server_->trust_bundle_file() + " -o " + file +
                 " -w '%{http_code}' " + args + " '" + url + "'",
             &output);
    return output;
  }

  // Enroll gets a device-client certificate for registration_id through EST simpleenroll and
  // returns the path of its PEM.
  std::string Enroll(const std::string& registration_id) {
    return EstEnroll(*server_, dir_, registration_id, kDeviceKey);
  }

  // Extension returns the URL after `prefix` in the certificate's text (CRL DP, AIA).
  std::string Url(const std::string& pem, const std::string& prefix) {
    std::string text = Shell("openssl x509 -in " + pem + " -noout -text");
    size_t at = text.find(prefix);
    EXPECT_NE(at, std::string::npos) << text;
    if (at == std::string::npos) return "";
    at += prefix.size();
    return text.substr(at, text.find('\n', at) - at);
  }

  // Issuer downloads the issuing CA from the certificate's caIssuers URL and writes a CA file
  // (issuing CA, then the roots) for openssl; returns {issuer PEM, CA file}.
  std::pair<std::string, std::string> Issuer(const std::string& leaf_pem) {
    std::string url = Url(leaf_pem, "CA Issuers - URI:");
    EXPECT_EQ(url.rfind(Base() + "/ca/", 0), 0u) << url;
    std::string der = dir_ + "/issuer.cer";
    EXPECT_EQ(Curl(url, der), "200");
    std::string pem = dir_ + "/issuer.pem";
    Shell("openssl x509 -inform DER -in " + der + " -out " + pem);
    std::string chain = dir_ + "/chain.pem";
    Shell("cat " + pem + " " + server_->trust_bundle_file() + " > " + chain);
    return {pem, chain};
  }

  std::string Serial(const std::string& pem) {
    std::string out = Shell("openssl x509 -in " + pem + " -noout -serial");
    return out.substr(out.find('=') + 1, out.find('\n') - out.find('=') - 1);
  }

  // Ocsp asks the server about certificate (or serial, when it starts with "0x") with openssl.
  std::string Ocsp(const std::string& issuer, const std::string& chain,
                   const std::string& certificate, int expected_exit = 0) {
    std::string what =
        certificate.rfind("0x", 0) == 0 ? "-serial " + certificate : "-cert " + certificate;
    return Shell("openssl ocsp -issuer " + issuer + " " + what + " -url " + Base() +
                     "/ocsp -CAfile " + chain + " -resp_text",
                 expected_exit);
  }

  std::string Revoke(const std::string& serial, const std::string& reason) {
    CommandResult revoked =
        RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", serial, "--reason", reason,
                    "--connection", server_->connection_file()});
    EXPECT_EQ(revoked.exit_code, 0) << Describe(revoked);
    return revoked.out;
  }

  static ServerProcess* server_;
  static uint16_t port_;
  static bool plain_http_;
  std::string dir_;
};

ServerProcess* RevocationTest::server_ = nullptr;
uint16_t RevocationTest::port_ = 0;
bool RevocationTest::plain_http_ = false;

// The same server with a plain-HTTP listener for CRLs and OCSP (--revocation-listen), where
// relying parties fetch them without TLS; certificates point there.
class PlainHttpRevocationTest : public RevocationTest {
 protected:
  static void SetUpTestSuite() {
    port_ = FreePort();
    plain_http_ = true;
    ServerProcessOptions options;
    options.args = {"--revocation-listen", "127.0.0.1:" + std::to_string(port_)};
    server_ = StartServerWithSasEnrollments(std::move(options), {"plain-device-1"}, kDeviceKey);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    RevocationTest::TearDownTestSuite();
    plain_http_ = false;
  }
};

TEST_F(PlainHttpRevocationTest, OpensslOcspAndCrlCheck_OverPlainHttp) {
  std::string leaf = Enroll("plain-device-1");
  EXPECT_EQ(Url(leaf, "OCSP - URI:"), Base() + "/ocsp");
  auto [issuer, chain] = Issuer(leaf);  // caIssuers over plain HTTP too
  std::string ocsp = Ocsp(issuer, chain, leaf);
  EXPECT_THAT(ocsp, HasSubstr(leaf + ": good"));
  EXPECT_THAT(ocsp, HasSubstr("Response verify OK"));

  std::string crl = dir_ + "/crl.der";
  ASSERT_EQ(Curl(Base() + "/crl/" + Url(leaf, "URI:" + Base() + "/crl/"), crl), "200");
  Shell("openssl crl -inform DER -in " + crl + " -out " + dir_ + "/crl.pem");
  EXPECT_THAT(Shell("openssl verify -crl_check -CAfile " + server_->trust_bundle_file() +
                    " -untrusted " + issuer + " -CRLfile " + dir_ + "/crl.pem " + leaf),
              HasSubstr(": OK"));
}

TEST_F(PlainHttpRevocationTest, ServesNothingButRevocation) {
  EXPECT_EQ(Curl(Base() + "/enrollments", dir_ + "/body"), "404");
  EXPECT_THAT(Shell("cat " + dir_ + "/body"), HasSubstr("no route /enrollments"));
  std::string registration = "/" + server_->id_scope() + "/registrations/plain-device-1/register";
  EXPECT_EQ(Curl(Base() + registration + "?api-version=2019-03-31", dir_ + "/body",
                 "-X PUT -H 'Content-Type: application/json' -d '{}'"),
            "404");
  // And it does not speak TLS.
  EXPECT_EQ(Curl("https://localhost:" + std::to_string(port_) + "/healthz", dir_ + "/body"), "000");
  // The TLS listener is there as before.
  EXPECT_EQ(
      Curl("https://localhost:" + std::to_string(server_->port()) + "/healthz", dir_ + "/body",
           "--resolve localhost:" + std::to_string(server_->port()) + ":127.0.0.1"),
      "200");
}

TEST_F(RevocationTest, OpensslOcsp_GoodThenRevokedAfterDevidCertRevoke) {
  std::string leaf = Enroll("rev-device-1");
  EXPECT_EQ(Url(leaf, "OCSP - URI:"), Base() + "/ocsp");
  auto [issuer, chain] = Issuer(leaf);

  std::string before = Ocsp(issuer, chain, leaf);
  EXPECT_THAT(before, HasSubstr(leaf + ": good"));
  EXPECT_THAT(before, HasSubstr("Response verify OK"));
  // The response is signed by the delegated responder, whose certificate it carries.
  EXPECT_THAT(before, HasSubstr("OCSP Signing"));
  EXPECT_THAT(before, HasSubstr("OCSP No Check"));

  Revoke(Serial(leaf), "keyCompromise");
  std::string after = Ocsp(issuer, chain, leaf);
  EXPECT_THAT(after, HasSubstr(leaf + ": revoked"));
  EXPECT_THAT(after, HasSubstr("Reason: keyCompromise"));
  EXPECT_THAT(after, HasSubstr("Response verify OK"));
}

TEST_F(RevocationTest, OpensslOcsp_UnknownForASerialNotIssued) {
  std::string leaf = Enroll("rev-device-2");
  auto [issuer, chain] = Issuer(leaf);
  std::string out = Ocsp(issuer, chain, "0x0123456789ABCDEF");
  EXPECT_THAT(out, HasSubstr("0x0123456789ABCDEF: unknown"));
  EXPECT_THAT(out, HasSubstr("Response verify OK"));
}

TEST_F(RevocationTest, OpensslOcsp_UnauthorizedForAnIssuerNotOurs) {
  Shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + dir_ +
        "/foreign.key -subj /CN=foreign-ca -days 1 -out " + dir_ + "/foreign.pem");
  Shell("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + dir_ +
        "/leaf.key -subj /CN=foreign-leaf -out " + dir_ + "/leaf.csr");
  Shell("openssl x509 -req -in " + dir_ + "/leaf.csr -CA " + dir_ + "/foreign.pem -CAkey " + dir_ +
        "/foreign.key -CAcreateserial -days 1 -out " + dir_ + "/leaf.pem");
  std::string out = Shell("openssl ocsp -issuer " + dir_ + "/foreign.pem -cert " + dir_ +
                              "/leaf.pem -url " + Base() + "/ocsp -CAfile " + dir_ + "/foreign.pem",
                          1);
  EXPECT_THAT(out, HasSubstr("Responder Error: unauthorized (6)"));
}

TEST_F(RevocationTest, OcspOverGet_AnswersTheBase64Request) {
  std::string leaf = Enroll("rev-device-2");
  auto [issuer, chain] = Issuer(leaf);
  std::string request = dir_ + "/request.der";
  Shell("openssl ocsp -issuer " + issuer + " -cert " + leaf + " -no_nonce -reqout " + request);
  // RFC 6960 Appendix A.1: base64, then URL-encoded.
  std::string encoded = Shell("base64 -w0 " + request +
                              " | sed -e 's|/|%2F|g' -e 's|+|%2B|g' "
                              "-e 's|=|%3D|g'");
  std::string response = dir_ + "/response.der";
  EXPECT_EQ(Curl(Base() + "/ocsp/" + encoded, response, "-D " + dir_ + "/headers"), "200");
  std::string headers = Shell("cat " + dir_ + "/headers");
  EXPECT_THAT(headers, HasSubstr("application/ocsp-response"));
  EXPECT_THAT(headers, HasSubstr("max-age="));
  EXPECT_THAT(headers, HasSubstr("ETag: \""));
  std::string out = Shell("openssl ocsp -respin " + response + " -issuer " + issuer + " -cert " +
                          leaf + " -CAfile " + chain);
  EXPECT_THAT(out, HasSubstr(leaf + ": good"));
}

TEST_F(RevocationTest, OpensslVerifyCrlCheck_PassesThenFailsAfterRevocation) {
  std::string leaf = Enroll("rev-device-2");
  auto [issuer, chain] = Issuer(leaf);
  std::string crl_url = Url(leaf, "URI:" + Base() + "/crl/");
  std::string url = Base() + "/crl/" + crl_url;
  std::string crl = dir_ + "/crl.der";
  ASSERT_EQ(Curl(url, crl, "-D " + dir_ + "/headers"), "200");
  EXPECT_THAT(Shell("cat " + dir_ + "/headers"), HasSubstr("application/pkix-crl"));
  Shell("openssl crl -inform DER -in " + crl + " -out " + dir_ + "/crl.pem");
  std::string verify = "openssl verify -crl_check -CAfile " + server_->trust_bundle_file() +
                       " -untrusted " + issuer + " -CRLfile " + dir_ + "/crl.pem " + leaf;
  EXPECT_THAT(Shell(verify), HasSubstr(": OK"));
  std::string number_before = Shell("openssl crl -in " + dir_ + "/crl.pem -noout -crlnumber");

  Revoke(Serial(leaf), "superseded");
  ASSERT_EQ(Curl(url, crl), "200");
  Shell("openssl crl -inform DER -in " + crl + " -out " + dir_ + "/crl.pem");
  std::string failed = Shell(verify, 2);
  EXPECT_THAT(failed, HasSubstr("certificate revoked"));
  std::string text = Shell("openssl crl -in " + dir_ + "/crl.pem -noout -text");
  EXPECT_THAT(text, HasSubstr("Serial Number: " + Serial(leaf)));
  EXPECT_THAT(text, HasSubstr("Superseded"));
  EXPECT_NE(Shell("openssl crl -in " + dir_ + "/crl.pem -noout -crlnumber"), number_before);
}

// The whole chain with CRLs (-crl_check_all): the issuing CA's CRL from the leaf's CRL
// distribution point and the root's from the issuing CA's, both fetched from devid.
TEST_F(RevocationTest, OpensslVerifyCrlCheckAll_FindsACrlForEveryCertificateOfTheChain) {
  std::string leaf = Enroll("rev-device-1");
  auto [issuer, chain] = Issuer(leaf);
  std::string crls = dir_ + "/crls.pem";
  for (const std::string& certificate : {leaf, issuer}) {
    std::string url = Base() + "/crl/" + Url(certificate, "URI:" + Base() + "/crl/");
    ASSERT_EQ(Curl(url, dir_ + "/one.crl"), "200") << url;
    Shell("openssl crl -inform DER -in " + dir_ + "/one.crl >> " + crls);
  }
  std::string verify = "openssl verify -crl_check_all -x509_strict -CAfile " +
                       server_->trust_bundle_file() + " -untrusted " + issuer + " -CRLfile " +
                       crls + " " + leaf;
  EXPECT_THAT(Shell(verify), HasSubstr(": OK"));
  // The last one fetched is the root's: signed by the root (where its key lives), no entries.
  std::string root_crl = Shell("openssl crl -inform DER -in " + dir_ + "/one.crl -noout -text");
  EXPECT_THAT(root_crl, HasSubstr("Issuer: CN = devid root CA"));
  EXPECT_THAT(root_crl, HasSubstr("No Revoked Certificates"));
}

TEST_F(RevocationTest, UnknownKeyIds_Are404) {
  EXPECT_EQ(Curl(Base() + "/crl/00ff.crl", dir_ + "/body"), "404");
  EXPECT_EQ(Curl(Base() + "/ca/00ff.cer", dir_ + "/body"), "404");
  EXPECT_THAT(Shell("cat " + dir_ + "/body"), HasSubstr("no CA certificate has key ID 00ff"));
}

TEST_F(RevocationTest, OcspSigner_IsRecordedInTheInventory_AndReusedAfterARestart) {
  std::string before = Shell("ls " + server_->data_dir() + "/ca/authority/ocsp/");
  EXPECT_THAT(before, HasSubstr(".pem"));
  EXPECT_THAT(before, HasSubstr(".key"));
  CommandResult listed = RunCommand(
      {DEVID_BINARY, "cert", "list", "--connection", server_->connection_file(), "-o", "json"});
  EXPECT_THAT(listed.out + listed.err, HasSubstr("ocsp-signer")) << Describe(listed);
  std::string pem = Shell("cat " + server_->data_dir() + "/ca/authority/ocsp/*.pem");
  ASSERT_TRUE(server_->Restart().has_value());
  EXPECT_EQ(Shell("cat " + server_->data_dir() + "/ca/authority/ocsp/*.pem"), pem);
}

// Two nodes on one PostgreSQL store sharing one CA (B's data dir gets a copy of A's CA; each
// issues its own OCSP signer): a revocation made through B shows in A's very next OCSP answer,
// even when A had that certificate's response cached.
class RevocationMultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
    ServerProcessOptions options;
    options.config_toml = "[store]\nurl = \"" + db_->url() + "\"\n";
    auto a = ServerProcess::Start(options);
    ASSERT_TRUE(a.has_value()) << a.error().message();
    node_a_.emplace(std::move(*a));
    std::string a_ca = node_a_->data_dir() + "/ca";
    options.prepare = [a_ca](const std::string& data_dir) -> Status {
      std::string output;
      if (RunShell("mkdir -p " + data_dir + " && cp -a " + a_ca + " " + data_dir + "/ && rm -rf " +
                       data_dir + "/ca/authority/ocsp",
                   &output) != 0) {
        return std::unexpected(Internal("copying the CA: " + output));
      }
      return Ok();
    };
    auto b = ServerProcess::Start(options);
    ASSERT_TRUE(b.has_value()) << b.error().message();
    node_b_.emplace(std::move(*b));
  }

  std::string Ocsp(const ServerProcess& node, const std::string& certificate) {
    std::string ca_dir = node_a_->data_dir() + "/ca/authority";
    std::string output;
    EXPECT_EQ(RunShell("cat " + ca_dir + "/certs/issuing-*.pem " + node_a_->trust_bundle_file() +
                           " > " + node_a_->root() + "/chain.pem",
                       &output),
              0)
        << output;
    EXPECT_EQ(RunShell("openssl ocsp -issuer $(ls " + ca_dir + "/certs/issuing-*.pem) -cert " +
                           certificate + " -url https://127.0.0.1:" + std::to_string(node.port()) +
                           "/ocsp -CAfile " + node_a_->root() + "/chain.pem",
                       &output),
              0)
        << output;
    return output;
  }

  std::optional<registry::postgres::testing::TestDatabase> db_;
  std::optional<ServerProcess> node_a_;
  std::optional<ServerProcess> node_b_;
};

TEST_F(RevocationMultiNodeTest, RevocationThroughOneNode_ShowsAtOnceOnTheOther) {
  // A's TLS certificate: issued by the shared CA and recorded in the shared inventory.
  std::string certificate = node_a_->data_dir() + "/tls/server.pem";
  EXPECT_THAT(Ocsp(*node_b_, certificate), HasSubstr(certificate + ": good"));
  EXPECT_THAT(Ocsp(*node_a_, certificate), HasSubstr(certificate + ": good"));
  EXPECT_THAT(Ocsp(*node_a_, certificate), HasSubstr(certificate + ": good"));  // cached now

  std::string serial_line;
  RunShell("openssl x509 -in " + certificate + " -noout -serial", &serial_line);
  std::string serial = serial_line.substr(serial_line.find('=') + 1);
  serial.erase(serial.find_last_not_of("\n") + 1);
  CommandResult revoked =
      RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", serial, "--reason", "keyCompromise",
                  "--connection", node_b_->connection_file()});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);

  std::string after = Ocsp(*node_a_, certificate);
  EXPECT_THAT(after, HasSubstr(certificate + ": revoked"));
  EXPECT_THAT(after, HasSubstr("Reason: keyCompromise"));
  EXPECT_THAT(after, HasSubstr("Response verify OK"));
}

}  // namespace
}  // namespace devid::testing
