// `devid device register --x509` with the device key in a SoftHSM2 token against the real
// `devid serve`: `devid device key create` makes the key on the token, `devid device csr` and
// `devid ca issue` certify it, and the TLS handshake is signed inside the token; `pkcs11-tool`
// shows the private key is sensitive and was never extractable. Also the refusal on a wrong PIN.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/file.h"
#include "keys/testing/softhsm_token.h"
#include "server_process.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

size_t Count(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

class DeviceX509HsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(token_.ok()) << token_.init_output();
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }
  std::string KeyUri(const std::string& label, const std::string& pin_file = "") const {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + label +
           "?pin-source=" + (pin_file.empty() ? token_.pin_file() : pin_file);
  }
  const std::vector<std::string> kModule = {"--pkcs11-module", DEVID_SOFTHSM2_MODULE};

  // MakeEnrolledDevice creates a token key labelled label, has it certified for reg_id and
  // enrolls the certificate; the chain is at Path(reg_id + ".pem").
  void MakeEnrolledDevice(const std::string& label, const std::string& reg_id) {
    std::vector<std::string> create = {"device",      "key", "create", "--key",
                                       KeyUri(label), "-o",  "json"};
    create.insert(create.end(), kModule.begin(), kModule.end());
    CommandResult created = Devid(create);
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
    // The store records the key's generated CKA_ID in the URI it returns.
    std::string uri = json::parse(created.out)["key"].get<std::string>();
    EXPECT_THAT(uri, HasSubstr("id="));
    EXPECT_THAT(uri, HasSubstr("object=" + label));
    ASSERT_TRUE(CertifyDeviceKey(*server_, KeyUri(label), reg_id, Path(reg_id + ".csr"),
                                 Path(reg_id + ".pem"), {}, kModule));
    auto chain = ReadFile(Path(reg_id + ".pem"));
    ASSERT_TRUE(chain);
    ASSERT_TRUE(EnrollCertificate(*server_, reg_id, *chain));
  }

  std::string Pkcs11Tool(const std::string& args) {
    std::string output;
    EXPECT_EQ(RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                           " --token-label " + SoftHsmToken::kLabel + " " + args,
                       &output),
              0)
        << output;
    return output;
  }

  SoftHsmToken token_;  // first: devid's children read SOFTHSM2_CONF, which it sets
  std::optional<ServerProcess> server_;
};

TEST_F(DeviceX509HsmTest, Registers_WithTokenKey_ThatNeverLeavesTheToken) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("device-key", "x509-hsm-1"));
  CommandResult r = RegisterX509(*server_, Path("x509-hsm-1.pem"), KeyUri("device-key"), kModule);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json assignment = json::parse(r.out);
  EXPECT_EQ(assignment["registrationId"], "x509-hsm-1");
  EXPECT_FALSE(assignment["assignedHub"].get<std::string>().empty());
  EXPECT_TRUE(Registered(*server_, "x509-hsm-1"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(SoftHsmToken::kPin)));

  // The certificate certifies the token's key pair: the token signed the handshake.
  std::string token_key, cert_key;
  ASSERT_EQ(
      RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE + " --token-label " +
                   SoftHsmToken::kLabel + " --read-object --type pubkey --label device-key -o " +
                   Path("token-pub.der") + " && openssl pkey -pubin -inform DER -in " +
                   Path("token-pub.der") + " -outform PEM",
               &token_key),
      0)
      << token_key;
  ASSERT_EQ(RunShell("openssl x509 -noout -pubkey -in " + Path("x509-hsm-1.pem"), &cert_key), 0);
  EXPECT_THAT(token_key, HasSubstr(cert_key));

  // The private key: sensitive and never extractable (PKCS #11 v2.40 §4.9), and the only one.
  std::string keys = Pkcs11Tool(std::string("--login --pin ") + SoftHsmToken::kPin +
                                " --list-objects --type privkey");
  EXPECT_EQ(Count(keys, "Private Key Object"), 1u) << keys;
  EXPECT_THAT(keys, HasSubstr("label:      device-key"));
  EXPECT_THAT(keys, HasSubstr("never extractable"));
  EXPECT_THAT(keys, HasSubstr("always sensitive"));
  EXPECT_EQ(Count(keys, "extractable"), Count(keys, "never extractable")) << keys;
}

TEST_F(DeviceX509HsmTest, Refuses_WrongPin_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("device-key", "x509-hsm-2"));
  std::ofstream(Path("wrong-pin")) << "0000\n";
  CommandResult r = RegisterX509(*server_, Path("x509-hsm-2.pem"),
                                 KeyUri("device-key", Path("wrong-pin")), kModule);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(r.err, Not(HasSubstr("0000")));
  EXPECT_FALSE(Registered(*server_, "x509-hsm-2"));
}

}  // namespace
}  // namespace devid::testing
