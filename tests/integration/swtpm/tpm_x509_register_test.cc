// `devid device register --x509` with the device key inside a TPM (swtpm) against the real
// `devid serve`: `devid device key create --key tpm2:...` makes the key in the TPM,
// `devid device csr` and `devid ca issue` certify it, the TLS handshake is signed by TPM2_Sign,
// and `tpm2_readpublic` on the same TPM shows the key was generated inside it and can never be
// duplicated out. The certificate renews through EST for the same key. Also the refusals: a
// handle with no key, an unreachable TPM, and a renewal that asks for a new key.
//
// Needs swtpm and tpm2-tools (scripts/install-deps.sh); a missing tool fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/random.h"
#include "ossl/unique_ptr.h"
#include "server_process.h"
#include "swtpm.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHandle[] = "0x81000010";

// PublicKeyOf reads the public key of a PEM certificate (the first in the file) or PEM public key.
ossl::UniquePtr<EVP_PKEY> PublicKeyOf(const std::string& pem, bool certificate) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!certificate)
    return ossl::UniquePtr<EVP_PKEY>(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ossl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return nullptr;
  return ossl::UniquePtr<EVP_PKEY>(X509_get_pubkey(cert.get()));
}

class TpmX509RegisterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    tpm_ = Swtpm::Start(std::filesystem::path(server_->root()) / "tpm");
    ASSERT_NE(tpm_, nullptr);
  }
  void TearDown() override { tpm_.reset(); }

  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }
  std::string KeyUri(const std::string& handle = kHandle) const {
    return "tpm2:handle=" + handle + "?tcti=" + tpm_->Tcti();
  }

  // MakeEnrolledDevice creates the TPM key at kHandle, has it certified for reg_id and enrolls
  // the certificate; the chain is at Path(reg_id + ".pem").
  void MakeEnrolledDevice(const std::string& reg_id) {
    CommandResult created = Devid({"device", "key", "create", "--key", KeyUri(), "-o", "json"});
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
    EXPECT_EQ(json::parse(created.out)["key"].get<std::string>(), KeyUri());
    ASSERT_TRUE(
        CertifyDeviceKey(*server_, KeyUri(), reg_id, Path(reg_id + ".csr"), Path(reg_id + ".pem")));
    ASSERT_TRUE(EnrollCertificate(*server_, reg_id, ReadFile(Path(reg_id + ".pem"))));
  }

  // TpmPublicKey returns the key at handle as tpm2_readpublic prints it, its PEM in *pem.
  std::string TpmPublicKey(const std::string& handle, std::string* pem) {
    std::string out =
        tpm_->Tool("readpublic", {"-c", handle, "-f", "pem", "-o", Path("tpm-key.pem")});
    EXPECT_TRUE(tpm_->ok()) << tpm_->err();
    *pem = ReadFile(Path("tpm-key.pem"));
    return out;
  }

  std::optional<ServerProcess> server_;
  std::unique_ptr<Swtpm> tpm_;
};

TEST_F(TpmX509RegisterTest, Registers_WithTpmKey_ThatWasMadeInTheTpmAndCannotLeaveIt) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("x509-tpm-1"));
  CommandResult r = RegisterX509(*server_, Path("x509-tpm-1.pem"), KeyUri());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json assignment = json::parse(r.out);
  EXPECT_EQ(assignment["registrationId"], "x509-tpm-1");
  EXPECT_FALSE(assignment["assignedHub"].get<std::string>().empty());
  EXPECT_TRUE(Registered(*server_, "x509-tpm-1"));

  // The devid processes have exited, so the TPM (one connection at a time) serves the tool.
  std::string pem;
  std::string shown = TpmPublicKey(kHandle, &pem);
  // Generated inside (sensitivedataorigin), bound to this TPM and its parent: fixedTPM and
  // fixedParent make TPM2_Duplicate refuse it (TPM 2.0 Part 1 §23.3, Part 3 §13.1).
  EXPECT_THAT(shown, HasSubstr("fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"));
  EXPECT_THAT(shown, Not(HasSubstr("restricted")));
  EXPECT_THAT(shown, Not(HasSubstr("decrypt")));
  EXPECT_THAT(shown, Not(HasSubstr("encryptedduplication")));
  EXPECT_THAT(shown, HasSubstr("NIST p256"));
  // The certificate the server accepted certifies the TPM's key.
  ossl::UniquePtr<EVP_PKEY> tpm_key = PublicKeyOf(pem, /*certificate=*/false);
  ossl::UniquePtr<EVP_PKEY> cert_key =
      PublicKeyOf(ReadFile(Path("x509-tpm-1.pem")), /*certificate=*/true);
  ASSERT_NE(tpm_key, nullptr);
  ASSERT_NE(cert_key, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(tpm_key.get(), cert_key.get()), 1);
}

TEST_F(TpmX509RegisterTest, Renews_ForTheSameTpmKey_AndRefusesANewOne) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("x509-tpm-2"));
  const std::string cert_file = Path("x509-tpm-2.pem");
  std::vector<std::string> renew = {"device",         "renew",
                                    "--cert",         cert_file,
                                    "--key",          KeyUri(),
                                    "--endpoint",     server_->device_endpoint(),
                                    "--trust-bundle", server_->trust_bundle_file(),
                                    "--force"};
  // A TPM key stays where it is: a new key per renewal is not made in a TPM yet.
  std::string before = ReadFile(cert_file);
  CommandResult refused = Devid(renew);
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("renew it with the same key"));
  EXPECT_EQ(ReadFile(cert_file), before);

  renew.push_back("--same-key");
  CommandResult renewed = Devid(renew);
  ASSERT_EQ(renewed.exit_code, 0) << Describe(renewed);
  EXPECT_THAT(renewed.out, HasSubstr("for the same key"));
  std::string after = ReadFile(cert_file);
  EXPECT_NE(FirstPem(after), FirstPem(before));
  ossl::UniquePtr<EVP_PKEY> old_key = PublicKeyOf(before, /*certificate=*/true);
  ossl::UniquePtr<EVP_PKEY> new_key = PublicKeyOf(after, /*certificate=*/true);
  ASSERT_NE(new_key, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(old_key.get(), new_key.get()), 1);
}

TEST_F(TpmX509RegisterTest, Refuses_HandleWithoutKey_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("x509-tpm-3"));
  CommandResult r = RegisterX509(*server_, Path("x509-tpm-3.pem"), KeyUri("0x81000011"));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no signing key at 0x81000011"));
  EXPECT_FALSE(Registered(*server_, "x509-tpm-3"));
}

TEST_F(TpmX509RegisterTest, Refuses_UnreachableTpm_StoresNothing) {
  ASSERT_NO_FATAL_FAILURE(MakeEnrolledDevice("x509-tpm-4"));
  std::string port = std::to_string(FreePortPair());  // nothing listens there
  std::string uri =
      std::string("tpm2:handle=") + kHandle + "?tcti=swtpm:host=127.0.0.1,port=" + port;
  CommandResult r = RegisterX509(*server_, Path("x509-tpm-4.pem"), uri);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("opening TPM TCTI"));
  EXPECT_THAT(r.err, HasSubstr("port=" + port));
  EXPECT_FALSE(Registered(*server_, "x509-tpm-4"));
}

}  // namespace
}  // namespace devid::testing
