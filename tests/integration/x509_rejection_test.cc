// The issue's list of X.509 refusals over mutual TLS against the real `devid serve`: a
// third-party PKI made with `openssl ca` (a root the enrollment group trusts, intermediates good
// and bad, CRLs as configured files and one served from a distribution point by python3's
// http.server), and curl or `openssl s_client` as the device. Each refusal must answer 401 with
// errorCode 401002 and a message naming the cause, and leave the group's registrations as they
// were.

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

constexpr char kGroup[] = "crl-vendor";
constexpr int kUnauthorized = 401002;

// kPkiSections are what `openssl ca` needs besides the vendor PKI sections, and the bad
// certificate profiles the refusals need.
constexpr char kPkiSections[] = R"cnf([ca]
default_ca = issuing
[issuing]
database = $ENV::CA_DB
new_certs_dir = .
rand_serial = yes
default_md = sha256
default_crl_days = 1
policy = any_cn
unique_subject = no
[any_cn]
commonName = supplied
[unlimited_intermediate]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[not_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[device_dp]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:$ENV::CRL_URL
)cnf";

// The PKI. CRL_BASE is the distribution point server's URL; crl-revoked names it.
constexpr char kMakePki[] = R"sh(
set -e
export CA_DB=none.db CRL_URL=http://unused
now=$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)
later=$(date -u -d '+300 days' +%y%m%d%H%M%SZ)
# root NAME: a self-signed CA.
root() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key \
    -subj /CN=$1 -days 3650 -out $1.pem -config pki.cnf -extensions root
  touch $1.db
}
# issue ISSUER SECTION NAME [NOT_BEFORE NOT_AFTER DIGEST KEY]: NAME.pem, NAME.key, NAME.db.
issue() {
  openssl req -new -newkey ${7:-ec -pkeyopt ec_paramgen_curve:P-256} -nodes -keyout $3.key \
    -subj /CN=$3 -out $3.csr -config pki.cnf
  CA_DB=$1.db openssl ca -batch -notext -config pki.cnf -cert $1.pem -keyfile $1.key \
    -in $3.csr -out $3.pem -extensions $2 -startdate ${4:-$now} -enddate ${5:-$later} \
    -md ${6:-sha256} -preserveDN
  touch $3.db
}
# crl ISSUER [REVOKED...]: ISSUER.crl (PEM), valid for a day.
crl() {
  issuer=$1; shift
  for cert in "$@"; do
    CA_DB=$issuer.db openssl ca -config pki.cnf -cert $issuer.pem -keyfile $issuer.key \
      -revoke $cert.pem
  done
  CA_DB=$issuer.db openssl ca -gencrl -config pki.cnf -cert $issuer.pem -keyfile $issuer.key \
    -out $issuer.crl
}
root crl-root
root crl-other-root
issue crl-root intermediate crl-int
issue crl-root intermediate crl-int-dp
issue crl-root intermediate crl-int-revoked
issue crl-root intermediate crl-int-stale
issue crl-root intermediate crl-int-expired 200101000000Z 210101000000Z
issue crl-root not_ca crl-int-not-ca
issue crl-int unlimited_intermediate crl-sub
issue crl-other-root intermediate crl-other-int
# leaf ISSUER SECTION NAME [...]: a device certificate and NAME.chain.pem (leaf, issuer).
leaf() { issue "$@"; cat $3.pem $1.pem > $3.chain.pem; }
leaf crl-int device crl-ok
leaf crl-int device crl-b
leaf crl-int device crl-noint
leaf crl-int device crl-expired 200101000000Z 210101000000Z
leaf crl-int device crl-future 350101000000Z 360101000000Z
leaf crl-int-expired device crl-int-expired-leaf
leaf crl-int server crl-noauth
leaf crl-int-not-ca device crl-ca-false
leaf crl-sub device crl-pathlen
cat crl-int.pem >> crl-pathlen.chain.pem
leaf crl-other-int device crl-untrusted
cat crl-other-root.pem >> crl-untrusted.chain.pem
CRL_URL=$CRL_BASE/crl-int-dp.crl leaf crl-int-dp device_dp crl-revoked
leaf crl-int-revoked device crl-revoked-int
leaf crl-int-stale device crl-stale
leaf crl-int device crl-sha1 "" "" sha1
leaf crl-int device crl-rsa1024 "" "" sha256 rsa:1024
crl crl-root crl-int-revoked
crl crl-int
crl crl-int-dp crl-revoked
openssl crl -in crl-int-dp.crl -outform DER -out crl-int-dp.der.crl
mv crl-int-dp.der.crl crl-int-dp.crl
CA_DB=crl-int-stale.db openssl ca -gencrl -config pki.cnf -cert crl-int-stale.pem \
  -keyfile crl-int-stale.key -crl_lastupdate 200101000000Z -crl_nextupdate 200102000000Z \
  -out crl-int-stale.crl
)sh";

// Reply is what a device got back: the HTTP status and the JSON body (null when not JSON).
struct Reply {
  int status = 0;
  json body;
};

class X509RejectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = std::filesystem::temp_directory_path() /
           ("devid-x509-rejection-" + std::to_string(::getpid()));
    std::filesystem::create_directories(pki_);
    std::string output;
    // The distribution point: a real HTTP server on an ephemeral port, serving the PKI directory.
    ASSERT_EQ(RunShell("cd " + pki_.string() +
                           " && (python3 -u -m http.server 0 --bind 127.0.0.1 > http.log 2>&1 &"
                           " echo $! > http.pid)",
                       &output),
              0)
        << output;
    std::string crl_base;
    for (int i = 0; i < 100 && crl_base.empty(); ++i) {
      RunShell("sed -n 's|.*(\\(http://[^/]*\\)/).*|\\1|p' " + (pki_ / "http.log").string(),
               &crl_base);
      while (!crl_base.empty() && crl_base.back() == '\n') crl_base.pop_back();
      if (crl_base.empty()) RunShell("sleep 0.1");
    }
    ASSERT_FALSE(crl_base.empty()) << "python3 http.server did not start";
    ASSERT_EQ(RunShell("cd " + pki_.string() + " && export CRL_BASE=" + crl_base + " && (" +
                           WriteVendorPkiConfig("pki.cnf", kPkiSections) + kMakePki + ")",
                       &output),
              0)
        << output;

    ServerProcessOptions options;
    options.config_toml = "[x509]\ncrl_files = [\"" + (pki_ / "crl-root.crl").string() + "\", \"" +
                          (pki_ / "crl-int.crl").string() + "\", \"" +
                          (pki_ / "crl-int-stale.crl").string() +
                          "\"]\ncrl_unavailable = \"reject\"\n";
    auto started = ServerProcess::Start(options);
    ASSERT_TRUE(started.has_value()) << started.error().message();
    server_ = new ServerProcess(std::move(*started));
    auto root = ReadFile((pki_ / "crl-root.pem").string());
    ASSERT_TRUE(root);
    DpsClient client(*server_);
    ASSERT_TRUE(client.connected());
    json group = {{"enrollmentGroupId", kGroup},
                  {"attestation",
                   {{"type", "x509"},
                    {"x509", {{"signingCertificates", {{"primary", {{"certificate", *root}}}}}}}}}};
    auto created = client.Service("PUT", std::string("/enrollmentGroups/") + kGroup, group);
    ASSERT_TRUE(created) << created.error().message();
    ASSERT_EQ(created->status, 200) << created->body;
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    RunShell("kill $(cat " + (pki_ / "http.pid").string() + ")");
    std::filesystem::remove_all(pki_);
  }

  static std::string File(const std::string& name) { return (pki_ / name).string(); }

  // Curl sends method to path on the device endpoint as the device with chain and key (files in
  // the PKI directory).
  static Reply Curl(const std::string& method, const std::string& path, const std::string& chain,
                    const std::string& key) {
    return AsJson(
        CurlAsDevice(*server_, method, path, File(chain), File(key), method == "GET" ? "" : "{}"));
  }

  static Reply Register(const std::string& reg_id, const std::string& chain,
                        const std::string& key) {
    return Curl("PUT", "/registrations/" + reg_id + "/register", chain, key);
  }

  // SClientRegister registers reg_id through `openssl s_client` at security level 0, for the
  // certificates curl's TLS library refuses to send (SHA-1 signatures, RSA-1024 keys).
  static Reply SClientRegister(const std::string& reg_id, const std::string& chain,
                               const std::string& key) {
    return AsJson(
        SClientRegisterAsDevice(*server_, reg_id, File(chain), File(key),
                                "-cert_chain " + File(chain) + " -cipher DEFAULT:@SECLEVEL=0"));
  }

  static Reply AsJson(const DeviceReply& reply) {
    return Reply{reply.status, json::parse(reply.body, nullptr, false)};
  }

  // Registrations lists the group's registrations, as the service API answers them.
  static json Registrations() {
    DpsClient client(*server_);
    auto got =
        client.Service("POST", std::string("/registrations/") + kGroup + "/query", json::object());
    if (!got || got->status != 200) return "query failed";
    return json::parse(got->body, nullptr, false);
  }

  // ExpectRefused checks a refusal: 401, errorCode 401002, a message with cause, and no change
  // to the group's registrations since before.
  static void ExpectRefused(const Reply& reply, const std::string& cause, const json& before) {
    EXPECT_EQ(reply.status, 401) << reply.body.dump();
    EXPECT_EQ(reply.body.value("errorCode", 0), kUnauthorized) << reply.body.dump();
    EXPECT_THAT(reply.body.value("message", ""), HasSubstr(cause));
    EXPECT_EQ(Registrations(), before);
  }

  static std::filesystem::path pki_;
  static ServerProcess* server_;
};

std::filesystem::path X509RejectionTest::pki_;
ServerProcess* X509RejectionTest::server_ = nullptr;

TEST_F(X509RejectionTest, Accepts_GoodDevice_WithRevocationChecked) {
  Reply reply = Register("crl-ok", "crl-ok.chain.pem", "crl-ok.key");
  EXPECT_EQ(reply.status, 202) << reply.body.dump();
}

// One refusal per row: the device, what it presents, and the cause the message must name.
struct Refusal {
  const char* name;
  const char* reg_id;
  const char* chain;
  const char* key;
  const char* cause;
  bool s_client = false;
};

class X509RefusalTest : public X509RejectionTest, public ::testing::WithParamInterface<Refusal> {};

TEST_P(X509RefusalTest, Refuses_AndLeavesTheStoreUnchanged) {
  const Refusal& refusal = GetParam();
  json before = Registrations();
  ASSERT_TRUE(before.is_array()) << before.dump();
  Reply reply = refusal.s_client ? SClientRegister(refusal.reg_id, refusal.chain, refusal.key)
                                 : Register(refusal.reg_id, refusal.chain, refusal.key);
  ExpectRefused(reply, refusal.cause, before);
}

INSTANTIATE_TEST_SUITE_P(
    IssueList, X509RefusalTest,
    ::testing::Values(
        Refusal{"ExpiredLeaf", "crl-expired", "crl-expired.chain.pem", "crl-expired.key",
                "certificate has expired at depth 0"},
        Refusal{"NotYetValidLeaf", "crl-future", "crl-future.chain.pem", "crl-future.key",
                "certificate is not yet valid at depth 0"},
        Refusal{"ExpiredIntermediate", "crl-int-expired-leaf", "crl-int-expired-leaf.chain.pem",
                "crl-int-expired-leaf.key", "certificate has expired at depth 1"},
        Refusal{"LeafWithoutClientAuth", "crl-noauth", "crl-noauth.chain.pem", "crl-noauth.key",
                "unsuitable certificate purpose at depth 0"},
        Refusal{"IntermediateWithCaFalse", "crl-ca-false", "crl-ca-false.chain.pem",
                "crl-ca-false.key", "invalid CA certificate at depth 1"},
        Refusal{"PathLengthExceeded", "crl-pathlen", "crl-pathlen.chain.pem", "crl-pathlen.key",
                "path length constraint exceeded"},
        Refusal{"UntrustedRoot", "crl-untrusted", "crl-untrusted.chain.pem", "crl-untrusted.key",
                "self-signed certificate in certificate chain"},
        Refusal{"RevokedLeaf_CrlFromDistributionPoint", "crl-revoked", "crl-revoked.chain.pem",
                "crl-revoked.key", "CN=crl-revoked"},
        Refusal{"RevokedIntermediate_CrlFromFile", "crl-revoked-int", "crl-revoked-int.chain.pem",
                "crl-revoked-int.key", "CN=crl-int-revoked"},
        Refusal{"CommonNameIsNotTheRegistrationId", "crl-someone-else", "crl-ok.chain.pem",
                "crl-ok.key", "is not the registration ID"},
        Refusal{"Sha1SignedLeaf", "crl-sha1", "crl-sha1.chain.pem", "crl-sha1.key",
                "signed with SHA1", true},
        Refusal{"Rsa1024Leaf", "crl-rsa1024", "crl-rsa1024.chain.pem", "crl-rsa1024.key",
                "RSA key of 1024 bits", true},
        Refusal{"ChainWithoutItsIntermediate", "crl-noint", "crl-noint.pem", "crl-noint.key",
                "unable to get local issuer certificate at depth 0"},
        Refusal{"StaleCrl_FailClosed", "crl-stale", "crl-stale.chain.pem", "crl-stale.key",
                "no current CRL for certificate CN=crl-stale (issuer CN=crl-int-stale)"}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return std::string(info.param.name); });

// The revocation causes in full: the issuer whose CRL listed the certificate, and why a stale
// CRL is not current.
TEST_F(X509RejectionTest, RevocationMessages_NameTheCrlAndTheReason) {
  Reply leaf = Register("crl-revoked", "crl-revoked.chain.pem", "crl-revoked.key");
  EXPECT_THAT(leaf.body.value("message", ""), HasSubstr("is revoked by CN=crl-int-dp's CRL"));
  Reply intermediate =
      Register("crl-revoked-int", "crl-revoked-int.chain.pem", "crl-revoked-int.key");
  EXPECT_THAT(intermediate.body.value("message", ""), HasSubstr("is revoked by CN=crl-root's CRL"));
  Reply stale = Register("crl-stale", "crl-stale.chain.pem", "crl-stale.key");
  EXPECT_THAT(stale.body.value("message", ""), HasSubstr("is stale (nextUpdate 2020-01-02"));
}

// Device A's certificate used for device B, once B is registered: neither B's registration nor
// its operation status answers A, and B's registration is unchanged.
TEST_F(X509RejectionTest, Refuses_DeviceACertificate_ForDeviceB) {
  Reply registered = Register("crl-b", "crl-b.chain.pem", "crl-b.key");
  ASSERT_EQ(registered.status, 202) << registered.body.dump();
  const std::string operation = registered.body.value("operationId", "");
  json before = Registrations();
  ExpectRefused(Register("crl-b", "crl-ok.chain.pem", "crl-ok.key"), "is not the registration ID",
                before);
  ExpectRefused(
      Curl("GET", "/registrations/crl-b/operations/" + operation, "crl-ok.chain.pem", "crl-ok.key"),
      "is not the registration ID", before);
  Reply own =
      Curl("GET", "/registrations/crl-b/operations/" + operation, "crl-b.chain.pem", "crl-b.key");
  EXPECT_EQ(own.status, 200) << own.body.dump();
}

// A device that resumes its TLS session still authenticates by its whole chain: the server keeps
// resumable sessions with the peer's intermediates (a stateless ticket would drop them).
TEST_F(X509RejectionTest, Accepts_ResumedTlsSession) {
  const std::string session = File("resumed.session");
  const std::string s_client =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(server_->port()) + " -CAfile " +
      server_->trust_bundle_file() + " -cert " + File("crl-ok.chain.pem") + " -cert_chain " +
      File("crl-ok.chain.pem") + " -key " + File("crl-ok.key") + " -ign_eof ";
  const std::string request = "printf 'PUT /" + server_->id_scope() +
                              "/registrations/crl-ok/register?api-version=2019-03-31 "
                              "HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 2\\r\\n"
                              "Connection: close\\r\\n\\r\\n{}' | ";
  std::string first;
  RunShell(request + s_client + "-sess_out " + session + " 2>&1", &first);
  EXPECT_THAT(first, HasSubstr("HTTP/1.1 202"));
  std::string second;
  RunShell(request + s_client + "-sess_in " + session + " 2>&1", &second);
  EXPECT_THAT(second, HasSubstr("Reused, TLSv1.3"));
  EXPECT_THAT(second, HasSubstr("HTTP/1.1 202"));
}

}  // namespace
}  // namespace devid::testing
