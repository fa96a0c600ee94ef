// The CA with both keys in a SoftHSM2 token, end to end through the real binaries: `devid ca init`
// creates the keys on the token, `devid serve` issues an EST certificate with them that
// `openssl verify -x509_strict` accepts, and `pkcs11-tool` shows the private keys never left the
// token. Also the refusals: serve with its token gone, and ca init with a wrong PIN.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "keys/testing/softhsm_token.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceKey[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// Files lists every file under dir with its contents, to show a refused command changed nothing.
std::vector<std::pair<std::string, std::string>> Files(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.emplace_back(entry.path().string(), Slurp(entry.path()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

class CaHsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(token_.ok()) << token_.init_output();
    env_ = {"SOFTHSM2_CONF=" + token_.dir() + "/softhsm2.conf"};
  }

  // Uri names object on the test token, the PIN read from pin_file.
  std::string Uri(const std::string& object, const std::string& pin_file) const {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + object +
           "?pin-source=" + pin_file;
  }

  // CaInit runs `devid ca init` with both CA keys on the token.
  CommandResult CaInit(const std::string& data_dir, const std::string& pin_file) {
    return RunCommand(
        {DEVID_BINARY, "ca", "init", "--data-dir", data_dir, "--pkcs11-module",
         DEVID_SOFTHSM2_MODULE, "--root-key", Uri("devid-root", pin_file), "--issuing-key",
         Uri("devid-issuing", pin_file), "--base-url", "https://localhost"},
        env_);
  }

  // PrivateKeys lists the token's private key objects, logged in with the right PIN.
  std::string PrivateKeys() {
    std::string output;
    EXPECT_EQ(RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                           " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                           SoftHsmToken::kPin + " --list-objects --type privkey",
                       &output),
              0)
        << output;
    return output;
  }

  SoftHsmToken token_;
  std::vector<std::string> env_;
};

TEST_F(CaHsmTest, EstIssuesWithTokenKeys_OpensslVerifies_KeysNeverExtractable) {
  ServerProcessOptions options;
  options.env = env_;
  options.prepare = [this](const std::string& data_dir) -> Status {
    CommandResult init = CaInit(data_dir, token_.pin_file());
    if (init.exit_code != 0) return std::unexpected(Unavailable("ca init: " + Describe(init)));
    return Ok();
  };
  auto started = ServerProcess::Start(std::move(options));
  ASSERT_TRUE(started.has_value()) << started.error().message();
  ServerProcess& server = *started;
  std::string dir = server.root();

  CommandResult added =
      RunCommand({DEVID_BINARY, "enrollment", "add", "--registration-id", "hsm-device-1",
                  "--primary-key", kDeviceKey, "--connection", server.connection_file()});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);

  // EST simpleenroll (RFC 7030 §4.2) with the device's SAS token, driven by curl.
  std::string output;
  std::string make_csr =
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout device.key -subj /CN=hsm-device-1 -outform DER";
  ASSERT_EQ(RunShell("cd " + dir + " && " + make_csr + " | openssl base64 > device.b64", &output),
            0)
      << output;
  auto key = ossl::Base64Decode(kDeviceKey);
  ASSERT_TRUE(key.has_value());
  std::string token = pki::CreateSasToken(*key, server.id_scope() + "/registrations/hsm-device-1",
                                          SystemClock().UnixSeconds() + 600, "registration");
  std::string est = server.device_endpoint() + "/.well-known/est/";
  std::string curl = "curl -s --cacert " + server.trust_bundle_file() + " -w '%{http_code}' ";
  ASSERT_EQ(RunShell(curl + "-o " + dir + "/cacerts.b64 " + est + "cacerts", &output), 0);
  ASSERT_EQ(output, "200");
  std::string post = "-X POST -H 'Content-Type: application/pkcs10' -H 'Authorization: " + token +
                     "' --data-binary @" + dir + "/device.b64 ";
  ASSERT_EQ(RunShell(curl + "-o " + dir + "/issued.b64 " + post + est + "simpleenroll", &output),
            0);
  ASSERT_EQ(output, "200") << Slurp(dir + "/issued.b64");
  for (const char* name : {"cacerts", "issued"}) {
    ASSERT_EQ(RunShell("openssl base64 -d -in " + dir + "/" + name +
                           ".b64 | openssl pkcs7 -inform DER -print_certs -out " + dir + "/" +
                           name + ".pem",
                       &output),
              0)
        << output;
  }

  // The chain verifies strictly against the root alone; cacerts supplies the issuing CA.
  std::string roots;
  std::string issuing_cert;
  for (const auto& entry :
       std::filesystem::directory_iterator(server.data_dir() + "/ca/authority/certs")) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("root-")) roots += Slurp(entry.path());
    if (name.starts_with("issuing-")) issuing_cert = entry.path();
  }
  ASSERT_FALSE(roots.empty());
  ASSERT_FALSE(issuing_cert.empty());
  std::ofstream(dir + "/roots.pem") << roots;
  ASSERT_EQ(RunShell("openssl verify -x509_strict -purpose sslclient -CAfile " + dir +
                         "/roots.pem -untrusted " + dir + "/cacerts.pem " + dir + "/issued.pem",
                     &output),
            0)
      << output;
  RunShell("openssl x509 -in " + dir + "/issued.pem -noout -subject -issuer", &output);
  EXPECT_THAT(output, HasSubstr("subject=CN = hsm-device-1"));
  EXPECT_THAT(output, HasSubstr("issuer=CN = devid issuing CA"));

  // The issuing CA's public key is the token's devid-issuing key pair: the token signed.
  std::string token_key, cert_key;
  ASSERT_EQ(
      RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE + " --token-label " +
                   SoftHsmToken::kLabel + " --read-object --type pubkey --label devid-issuing -o " +
                   dir + "/token-pub.der && openssl pkey -pubin -inform DER -in " + dir +
                   "/token-pub.der -outform PEM",
               &token_key),
      0)
      << token_key;
  ASSERT_EQ(RunShell("openssl x509 -in " + issuing_cert + " -noout -pubkey", &cert_key), 0);
  EXPECT_EQ(token_key, cert_key);

  // Both CA private keys: sensitive and never extractable (CKA_SENSITIVE true, CKA_EXTRACTABLE
  // false since creation, PKCS #11 v2.40 §4.9), and no file key was written.
  std::string keys = PrivateKeys();
  EXPECT_THAT(keys, HasSubstr("label:      devid-root"));
  EXPECT_THAT(keys, HasSubstr("label:      devid-issuing"));
  EXPECT_EQ(Count(keys, "Private Key Object"), 2u) << keys;
  EXPECT_EQ(Count(keys, "never extractable"), 2u) << keys;
  EXPECT_EQ(Count(keys, "always sensitive"), 2u) << keys;
  EXPECT_EQ(Count(keys, "extractable"), Count(keys, "never extractable")) << keys;
  // They sign and nothing else.
  EXPECT_EQ(Count(keys, "Usage:      sign"), 2u) << keys;
  EXPECT_EQ(Count(keys, "decrypt"), 0u) << keys;
  EXPECT_EQ(Count(keys, "unwrap"), 0u) << keys;
  EXPECT_FALSE(std::filesystem::exists(server.data_dir() + "/ca/authority/keys/passphrase"));
  std::string manifest = Slurp(server.data_dir() + "/ca/authority/authority.json");
  EXPECT_THAT(manifest, HasSubstr("pkcs11:"));
  EXPECT_THAT(manifest, Not(HasSubstr("file:")));
  EXPECT_THAT(manifest, Not(HasSubstr(SoftHsmToken::kPin)));
}

TEST_F(CaHsmTest, Serve_Rejects_MissingToken) {
  std::string root = token_.dir() + "/serve";
  std::string data_dir = root + "/data";
  CommandResult init = CaInit(data_dir, token_.pin_file());
  ASSERT_EQ(init.exit_code, 0) << Describe(init);
  std::string manifest_path = data_dir + "/ca/authority/authority.json";
  std::string manifest = Slurp(manifest_path);
  std::string label = std::string("token=") + SoftHsmToken::kLabel;
  ASSERT_THAT(manifest, HasSubstr(label));
  std::vector<std::string> serve = {DEVID_BINARY, "serve",    "--data-dir",
                                    data_dir,     "--listen", "127.0.0.1:0"};

  // The manifest names a token label no slot has.
  std::string renamed = manifest;
  for (size_t at = renamed.find(label); at != std::string::npos; at = renamed.find(label, at)) {
    renamed.replace(at, label.size(), "token=no-such-token");
    at += label.size();
  }
  std::ofstream(manifest_path, std::ios::trunc) << renamed;
  auto before = Files(data_dir + "/ca");
  CommandResult r = RunCommand(serve, env_);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("loading the key of issuing CA"));
  EXPECT_THAT(r.err, HasSubstr("no PKCS #11 token matches pkcs11:"));
  EXPECT_THAT(r.err, HasSubstr("token=no-such-token"));
  EXPECT_THAT(r.err, Not(HasSubstr("listening")));
  // Nothing replaced the CA (no new development CA) and nothing was written under ca/.
  EXPECT_EQ(Files(data_dir + "/ca"), before);

  // The manifest is right but the token itself is gone.
  std::ofstream(manifest_path, std::ios::trunc) << manifest;
  std::string output;
  ASSERT_EQ(RunShell(std::string("softhsm2-util --delete-token --token ") + SoftHsmToken::kLabel,
                     &output),
            0)
      << output;
  before = Files(data_dir + "/ca");
  r = RunCommand(serve, env_);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no PKCS #11 token matches pkcs11:"));
  EXPECT_THAT(r.err, HasSubstr(std::string("token=") + SoftHsmToken::kLabel));
  EXPECT_THAT(r.err, Not(HasSubstr(SoftHsmToken::kPin)));
  EXPECT_EQ(Files(data_dir + "/ca"), before);
}

TEST_F(CaHsmTest, CaInit_Rejects_WrongPin) {
  std::string root = token_.dir() + "/init";
  std::string data_dir = root + "/data";
  std::filesystem::create_directories(root);
  std::string wrong_pin_file = root + "/wrong-pin";
  std::ofstream(wrong_pin_file) << "97531\n";

  CommandResult r = CaInit(data_dir, wrong_pin_file);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("creating the root CA key"));
  EXPECT_THAT(r.err, HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(r.err, Not(HasSubstr("97531")));
  // No CA was recorded, and the token holds no key.
  EXPECT_FALSE(std::filesystem::exists(data_dir + "/ca/authority/authority.json"));
  EXPECT_TRUE(Files(data_dir + "/ca/authority/certs").empty());
  EXPECT_EQ(Count(PrivateKeys(), "Private Key Object"), 0u);

  // The right PIN still works afterwards: the wrong one did not lock the token.
  CommandResult ok = CaInit(data_dir, token_.pin_file());
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
}

}  // namespace
}  // namespace devid::testing
