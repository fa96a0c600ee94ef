// `devid ca` (init, import, rollover, issue, list) through the real binary, with CA keys in
// encrypted files and in a SoftHSM2 token; every issued certificate is checked by the real
// `openssl verify -x509_strict`, and the token's keys by `pkcs11-tool`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "keys/testing/softhsm_token.h"
#include "ossl/base64.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class CaCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/devid-ca-cli-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    data_dir_ = root_ + "/data";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  CommandResult Devid(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args, env);
  }

  // MakeCsr writes a P-256 key and a request for CN=cn with openssl; returns the request's path.
  std::string MakeCsr(const std::string& cn) {
    std::string csr = root_ + "/" + cn + ".csr";
    std::string output;
    EXPECT_EQ(RunShell("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                       "-keyout " +
                           root_ + "/" + cn + ".key -subj /CN=" + cn + " -out " + csr,
                       &output),
              0)
        << output;
    return csr;
  }

  // Roots concatenates the CA's root certificates into one PEM file.
  std::string Roots() {
    std::string pem;
    for (const auto& entry :
         std::filesystem::directory_iterator(data_dir_ + "/ca/authority/certs")) {
      if (entry.path().filename().string().starts_with("root-")) pem += Slurp(entry.path());
    }
    std::string path = root_ + "/roots.pem";
    std::ofstream(path) << pem;
    return path;
  }

  // Verify runs `openssl verify -x509_strict` on a chain file (leaf first) against Roots().
  std::string Verify(const std::string& chain, const std::string& purpose = "sslclient") {
    std::string output;
    int status = RunShell("openssl verify -x509_strict -purpose " + purpose + " -CAfile " +
                              Roots() + " -untrusted " + chain + " " + chain,
                          &output);
    return status == 0 ? "" : output;
  }

  // Issue runs `devid ca issue` for a fresh CSR with CN=cn and returns the chain's path.
  std::string Issue(const std::string& cn, std::vector<std::string> extra = {}) {
    std::string out = root_ + "/" + cn + ".pem";
    std::vector<std::string> args = {"ca",    "issue",     "--data-dir", data_dir_,
                                     "--csr", MakeCsr(cn), "--out",      out};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Devid(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return out;
  }

  std::string root_;
  std::string data_dir_;
};

TEST_F(CaCliTest, Init_WithFileKeys_IssuesDeviceCertificatesOpensslAccepts) {
  CommandResult init = Devid(
      {"ca", "init", "--data-dir", data_dir_, "--base-url", "https://devid.example.com:8443"});
  ASSERT_EQ(init.exit_code, 0) << Describe(init);

  std::string chain = Issue("device-0042");
  EXPECT_EQ(Verify(chain), "");
  std::string output;
  ASSERT_EQ(RunShell("openssl x509 -in " + chain +
                         " -noout -subject -ext "
                         "crlDistributionPoints,authorityInfoAccess,extendedKeyUsage",
                     &output),
            0);
  EXPECT_THAT(output, HasSubstr("CN = device-0042"));
  EXPECT_THAT(output, HasSubstr("URI:https://devid.example.com:8443/crl/"));
  EXPECT_THAT(output, HasSubstr("OCSP - URI:https://devid.example.com:8443/ocsp"));
  EXPECT_THAT(output, HasSubstr("TLS Web Client Authentication"));

  // Keys: encrypted PKCS #8, owner-only.
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_ + "/ca/authority/keys")) {
    struct stat st {};
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
    if (entry.path().extension() == ".key") {
      EXPECT_THAT(Slurp(entry.path()), HasSubstr("BEGIN ENCRYPTED PRIVATE KEY"));
    }
  }

  CommandResult again = Devid({"ca", "init", "--data-dir", data_dir_});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
}

// What `devid ca issue` signs offline is in the inventory `devid serve` answers for, so it can be
// found and revoked like anything EST issued.
TEST_F(CaCliTest, Issue_RecordsTheCertificateInTheInventory) {
  std::string serial;
  auto server = ServerProcess::Start(ServerProcessOptions{
      .prepare = [&](const std::string& data_dir) -> Status {
        data_dir_ = data_dir;
        CommandResult init = Devid({"ca", "init", "--data-dir", data_dir_});
        if (init.exit_code != 0) return std::unexpected(Internal(Describe(init)));
        std::string chain = Issue("device-0042");
        RunShell("openssl x509 -in " + chain + " -noout -serial | cut -d= -f2", &serial);
        return Ok();
      }});
  ASSERT_TRUE(server) << server.error().message();
  serial.erase(serial.find_last_not_of("\n") + 1);
  CommandResult listed = Devid({"cert", "list", "--device", "device-0042", "-o", "json",
                                "--connection", server->connection_file()});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr("\"serialNumber\": \"" + serial + "\""));
  EXPECT_THAT(listed.out, HasSubstr("\"profile\": \"device-client\""));
  CommandResult revoked = Devid({"cert", "revoke", "--serial", serial, "--connection",
                                 server->connection_file()});
  EXPECT_EQ(revoked.exit_code, 0) << Describe(revoked);
}

// The root's CRL is signed where the root key is; openssl checks its signature with the root.
TEST_F(CaCliTest, RootCrl_SignsAVerifiableCrlForTheRoot) {
  ASSERT_EQ(Devid({"ca", "init", "--data-dir", data_dir_}).exit_code, 0);
  CommandResult crl = Devid({"ca", "root-crl", "--data-dir", data_dir_, "--days", "30"});
  ASSERT_EQ(crl.exit_code, 0) << Describe(crl);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_ + "/ca/authority/crls")) {
    files.push_back(entry.path().string());
  }
  ASSERT_EQ(files.size(), 1u);
  std::string output;
  EXPECT_EQ(RunShell("openssl crl -inform DER -in " + files[0] + " -CAfile " + Roots() +
                         " -noout -nextupdate 2>&1",
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("verify OK"));
  CommandResult bad = Devid({"ca", "root-crl", "--data-dir", data_dir_, "--days", "0"});
  EXPECT_NE(bad.exit_code, 0);
}

TEST_F(CaCliTest, Issue_ServerProfile_ForOpensslSslServer) {
  ASSERT_EQ(Devid({"ca", "init", "--data-dir", data_dir_}).exit_code, 0);
  std::string chain = Issue("devid.example.com", {"--profile", "server", "--dns",
                                                  "devid.example.com", "--ip", "127.0.0.1"});
  EXPECT_EQ(Verify(chain, "sslserver"), "");
}

TEST_F(CaCliTest, Rollover_NewCaIssues_OldCertificatesStillVerify) {
  ASSERT_EQ(Devid({"ca", "init", "--data-dir", data_dir_}).exit_code, 0);
  std::string before = Issue("before");
  CommandResult rollover = Devid({"ca", "rollover", "--data-dir", data_dir_, "--algorithm",
                                  "ecdsa-p384", "--name", "devid issuing CA 2"});
  ASSERT_EQ(rollover.exit_code, 0) << Describe(rollover);
  std::string after = Issue("after");
  EXPECT_EQ(Verify(before), "");
  EXPECT_EQ(Verify(after), "");
  std::string output;
  RunShell("openssl x509 -in " + after + " -noout -issuer", &output);
  EXPECT_THAT(output, HasSubstr("devid issuing CA 2"));
  CommandResult list = Devid({"ca", "list", "--data-dir", data_dir_});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_THAT(list.out, HasSubstr("CN=devid issuing CA 2"));
  EXPECT_THAT(list.out, HasSubstr("CN=devid issuing CA\n"));
}

TEST_F(CaCliTest, Init_WithKeysInSoftHsm_KeysNeverExtractable) {
  SoftHsmToken token;
  ASSERT_TRUE(token.ok()) << token.init_output();
  auto uri = [&](const std::string& object) {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + object +
           "?pin-source=" + token.pin_file();
  };
  std::vector<std::string> env = {"SOFTHSM2_CONF=" + token.dir() + "/softhsm2.conf"};
  CommandResult init =
      Devid({"ca", "init", "--data-dir", data_dir_, "--pkcs11-module", DEVID_SOFTHSM2_MODULE,
             "--root-key", uri("devid-root"), "--issuing-key", uri("devid-issuing")},
            env);
  ASSERT_EQ(init.exit_code, 0) << Describe(init);
  std::string out = root_ + "/hsm-device.pem";
  // The manifest recorded module-path, so later commands need no --pkcs11-module.
  CommandResult issue = Devid(
      {"ca", "issue", "--data-dir", data_dir_, "--csr", MakeCsr("hsm-device"), "--out", out}, env);
  ASSERT_EQ(issue.exit_code, 0) << Describe(issue);
  EXPECT_EQ(Verify(out), "");
  EXPECT_FALSE(std::filesystem::exists(data_dir_ + "/ca/authority/keys/passphrase"));

  std::string output;
  ASSERT_EQ(RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                         " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                         SoftHsmToken::kPin + " --list-objects --type privkey",
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("label:      devid-root"));
  EXPECT_THAT(output, HasSubstr("label:      devid-issuing"));
  size_t count = 0;
  for (size_t at = output.find("never extractable"); at != std::string::npos;
       at = output.find("never extractable", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 2u) << output;

  // A URI naming a token that is not there.
  CommandResult missing =
      Devid({"ca", "rollover", "--data-dir", data_dir_, "--pkcs11-module", DEVID_SOFTHSM2_MODULE,
             "--key", "pkcs11:token=absent;object=x?pin-value=1234"},
            env);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no PKCS #11 token matches pkcs11:"));
  EXPECT_THAT(missing.err, ::testing::Not(HasSubstr("1234")));
}

TEST_F(CaCliTest, Import_ExistingCaMadeByOpenssl) {
  // An outside CA: a root and an issuing CA made with the openssl CLI, the issuing key
  // encrypted with PBES2 / AES-256-CBC.
  std::string d = root_;
  std::string script =
      "set -e; cd " + d + "\n" +
      "openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "
      "ext-root.key "
      "-subj '/CN=External Root' -days 3650 -out ext-root.pem "
      "-addext 'basicConstraints=critical,CA:TRUE' -addext "
      "'keyUsage=critical,keyCertSign,cRLSign'\n"
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ext-int.plain "
      "-subj '/CN=External Issuing' -out ext-int.csr\n"
      "printf "
      "'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
      "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid:always\\n' > ext.cnf\n"
      "openssl x509 -req -in ext-int.csr -CA ext-root.pem -CAkey ext-root.key -CAcreateserial "
      "-days 1000 -extfile ext.cnf -out ext-int.pem\n"
      "openssl pkcs8 -topk8 -v2 aes-256-cbc -in ext-int.plain -out ext-int.key -passout "
      "pass:s3cret\n"
      "cat ext-int.pem ext-root.pem > ext-chain.pem\n";
  std::string output;
  ASSERT_EQ(RunShell(script, &output), 0) << output;
  std::string key_uri = "file:" + d + "/ext-int.key?passphrase-env=EXT_PASS";

  CommandResult wrong = Devid({"ca", "import", "--data-dir", data_dir_, "--certificate",
                               d + "/ext-chain.pem", "--key", key_uri},
                              {"EXT_PASS=not-it"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("wrong passphrase"));

  CommandResult import = Devid({"ca", "import", "--data-dir", data_dir_, "--certificate",
                                d + "/ext-chain.pem", "--key", key_uri},
                               {"EXT_PASS=s3cret"});
  ASSERT_EQ(import.exit_code, 0) << Describe(import);
  std::string out = d + "/imported.pem";
  CommandResult issue =
      Devid({"ca", "issue", "--data-dir", data_dir_, "--csr", MakeCsr("imported"), "--out", out},
            {"EXT_PASS=s3cret"});
  ASSERT_EQ(issue.exit_code, 0) << Describe(issue);
  ASSERT_EQ(RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + d +
                         "/ext-root.pem -untrusted " + out + " " + out,
                     &output),
            0)
      << output;
}

TEST_F(CaCliTest, Issue_RejectsRequestWithBadSignature) {
  ASSERT_EQ(Devid({"ca", "init", "--data-dir", data_dir_}).exit_code, 0);
  std::string csr = MakeCsr("tampered");
  std::string der_path = root_ + "/tampered.der";
  ASSERT_EQ(RunShell("openssl req -in " + csr + " -outform DER -out " + der_path), 0);
  std::string der = Slurp(der_path);
  der.back() ^= 0x01;  // the last byte belongs to the signature
  std::string pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + ossl::Base64Encode(der) +
                    "\n-----END CERTIFICATE REQUEST-----\n";
  std::ofstream(csr) << pem;
  CommandResult r = Devid({"ca", "issue", "--data-dir", data_dir_, "--csr", csr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("signature does not verify"));
}

}  // namespace
}  // namespace devid::testing
