// Renewal with a new key when the device key lives in a PKCS #11 token (SoftHSM2): the new key is
// made in the token as <label>.next, and only once the new certificate is proven is the old key
// destroyed and the new one relabelled to <label>. A failure deletes the new key; a commit cut
// short at any step is completed or undone by the next call.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "base/file.h"
#include "ca/authority.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "devid/renewal.h"
#include "keys/key_store.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/testing/softhsm_token.h"
#include "sdk/pending_key.h"
#include "sdk/testing/fake_reenroller.h"
#include "sdk/testing/renewal_fixture.h"

namespace devid::sdk {
namespace {

using keys::testing::RunShell;
using keys::testing::SoftHsmToken;
using std::chrono::hours;
using testing::FakeReenroller;
using testing::FixedRandom;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDevice[] = "token-device-1";

class RenewalPkcs11Test : public testing::RenewalFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(token_.ok()) << token_.init_output();
    SetUpCas("devid-renewal-p11-");
    if (HasFatalFailure()) return;
    credential_.certificate_path = dir_ + "/device.pem";
    credential_.key_uri = Uri("device-key");
    ASSERT_TRUE(CreateDeviceKey(credential_.key_uri, "ecdsa-p256", key_options_).has_value());
    ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path,
                                    IssueFor(*Key(credential_.key_uri)).ToPem(), 0600));
  }

  std::string Uri(const std::string& object) const {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + object +
           "?pin-source=" + token_.pin_file();
  }
  std::shared_ptr<const keys::Key> Key(const std::string& uri) {
    auto key = OpenDeviceKey(uri, key_options_);
    EXPECT_TRUE(key.has_value()) << key.error().message();
    return key ? *key : nullptr;
  }
  pki::Certificate IssueFor(const keys::Key& key) {
    auto issued = authority_->Issue(
        ca::kDeviceClientProfile,
        {.common_name = kDevice, .public_key = key.public_key(), .validity = hours(30 * 24)});
    EXPECT_TRUE(issued.has_value());
    return std::move(*issued);
  }
  CertificateRenewer Renewer() {
    return CertificateRenewer(credential_, authority_->roots().front().ToPem(), {}, key_options_,
                              *reenroller_, clock_, jitter_);
  }
  std::string CertificateFile() { return *ReadFile(credential_.certificate_path); }
  pki::Certificate CurrentCertificate() { return *pki::Certificate::FromPem(CertificateFile()); }
  bool Loads(const std::string& uri) { return OpenDeviceKey(uri, key_options_).has_value(); }
  static bool Certifies(const pki::Certificate& certificate, const keys::Key& key) {
    return EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key.public_key()) == 1;
  }
  // PrivateKeyCount counts the token's private keys as pkcs11-tool lists them.
  int PrivateKeyCount() {
    std::string output;
    EXPECT_EQ(RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                           " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                           SoftHsmToken::kPin + " --list-objects --type privkey",
                       &output),
              0)
        << output;
    int count = 0;
    for (size_t at = 0; (at = output.find("Private Key Object", at)) != std::string::npos; ++at) {
      ++count;
    }
    return count;
  }

  SoftHsmToken token_;  // first: SOFTHSM2_CONF must be set before the module loads
  DeviceKeyOptions key_options_{.pkcs11_module = DEVID_SOFTHSM2_MODULE};
  DeviceCredential credential_;
};

TEST_F(RenewalPkcs11Test, Renews_WithANewTokenKey_UnderTheOldLabel) {
  auto old_key = Key(credential_.key_uri);
  auto old_certificate = CurrentCertificate();
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
  EXPECT_FALSE(reenroller_->last_new_key_is_current);

  auto renewed = CurrentCertificate();
  EXPECT_NE(renewed.SerialHex(), old_certificate.SerialHex());
  auto key = Key(credential_.key_uri);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(Certifies(renewed, *key));
  EXPECT_FALSE(Certifies(renewed, *old_key));
  EXPECT_FALSE(Loads(Uri("device-key.next")));
  EXPECT_EQ(PrivateKeyCount(), 1);
  EXPECT_FALSE(std::filesystem::exists(credential_.certificate_path + ".next"));
  EXPECT_THAT(report->key_uri, HasSubstr("object=device-key"));
  EXPECT_THAT(report->key_uri, Not(HasSubstr(".next")));
}

TEST_F(RenewalPkcs11Test, Refused_DeletesTheNewKey_AndKeepsTheOld) {
  std::string certificate_file = CertificateFile();
  auto old_key = Key(credential_.key_uri);
  reenroller_->answer = FakeReenroller::Answer::kOtherKey;
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(report.error().message(), HasSubstr("is not for the key"));
  EXPECT_EQ(CertificateFile(), certificate_file);
  auto key = Key(credential_.key_uri);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(key->public_key(), old_key->public_key()), 1);
  EXPECT_FALSE(Loads(Uri("device-key.next")));
  EXPECT_EQ(PrivateKeyCount(), 1);
}

TEST_F(RenewalPkcs11Test, PinValue_RenewsWithTheSameKey_ButRefusesANewOne) {
  credential_.key_uri = std::string("pkcs11:token=") + SoftHsmToken::kLabel +
                        ";object=device-key?pin-value=" + SoftHsmToken::kPin;
  std::string certificate_file = CertificateFile();
  CertificateRenewer renewer(credential_, authority_->roots().front().ToPem(), {}, key_options_,
                             *reenroller_, clock_, jitter_);
  auto refused = renewer.RenewIfDue(/*force=*/true);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), HasSubstr("pin-source=FILE"));
  EXPECT_EQ(reenroller_->calls, 0);
  EXPECT_EQ(CertificateFile(), certificate_file);
  EXPECT_EQ(PrivateKeyCount(), 1);

  CertificateRenewer same_key(credential_, authority_->roots().front().ToPem(), {.new_key = false},
                              key_options_, *reenroller_, clock_, jitter_);
  auto report = same_key.RenewIfDue(/*force=*/true);
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
  EXPECT_THAT(report->key_uri, Not(HasSubstr(SoftHsmToken::kPin)));
  EXPECT_EQ(PrivateKeyCount(), 1);
}

TEST_F(RenewalPkcs11Test, Rejects_ANewKey_ForAUriNamingTheId_WithoutTouchingTheToken) {
  // The URI the store reports for the key names its CKA_ID beside the label.
  credential_.key_uri = Key(credential_.key_uri)->uri();
  ASSERT_THAT(credential_.key_uri, HasSubstr("id="));
  std::string certificate_file = CertificateFile();
  auto refused = Renewer().RenewIfDue(/*force=*/true);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), HasSubstr("drop id="));
  EXPECT_EQ(reenroller_->calls, 0);
  EXPECT_EQ(CertificateFile(), certificate_file);
  EXPECT_EQ(PrivateKeyCount(), 1);
}

TEST_F(RenewalPkcs11Test, InterruptedCommit_BeforeTheOldKeyWentAway_IsUndoneByTheNextCall) {
  std::string certificate_file = CertificateFile();
  ASSERT_TRUE(CreateDeviceKey(Uri("device-key.next"), "ecdsa-p256", key_options_).has_value());
  ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path + ".next",
                                  IssueFor(*Key(Uri("device-key.next"))).ToPem(), 0600));
  auto report = Renewer().RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_FALSE(report->renewed);
  EXPECT_EQ(CertificateFile(), certificate_file);
  EXPECT_FALSE(Loads(Uri("device-key.next")));
  EXPECT_EQ(PrivateKeyCount(), 1);
  EXPECT_FALSE(std::filesystem::exists(credential_.certificate_path + ".next"));
}

TEST_F(RenewalPkcs11Test, InterruptedCommit_AfterTheOldKeyWasDestroyed_IsCompletedByTheNextCall) {
  // What a power loss between C_DestroyObject and the relabelling leaves: no key under the label,
  // the new key under <label>.next and the new certificate pending.
  ASSERT_TRUE(CreateDeviceKey(Uri("device-key.next"), "ecdsa-p256", key_options_).has_value());
  pki::Certificate renewed = IssueFor(*Key(Uri("device-key.next")));
  ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path + ".next", renewed.ToPem(), 0600));
  {
    keys::Pkcs11KeyStore store(DEVID_SOFTHSM2_MODULE);
    auto uri = keys::ParseKeyUri(credential_.key_uri);
    ASSERT_TRUE(uri.has_value());
    ASSERT_TRUE(store.DeleteKey(*uri).has_value());
  }
  auto report = Renewer().RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_EQ(report->serial, renewed.SerialHex());
  EXPECT_EQ(CurrentCertificate().SerialHex(), renewed.SerialHex());
  auto key = Key(credential_.key_uri);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(Certifies(renewed, *key));
  EXPECT_FALSE(Loads(Uri("device-key.next")));
  EXPECT_EQ(PrivateKeyCount(), 1);
}

TEST_F(RenewalPkcs11Test, InterruptedCommit_AfterTheKeyMoved_IsCompletedByTheNextCall) {
  ASSERT_TRUE(CreateDeviceKey(Uri("device-key.next"), "ecdsa-p256", key_options_).has_value());
  pki::Certificate renewed = IssueFor(*Key(Uri("device-key.next")));
  ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path + ".next", renewed.ToPem(), 0600));
  auto uri = keys::ParseKeyUri(credential_.key_uri);
  ASSERT_TRUE(uri.has_value());
  ASSERT_TRUE(PromotePendingKey(*uri, key_options_).has_value());

  auto report = Renewer().RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_EQ(CurrentCertificate().SerialHex(), renewed.SerialHex());
  EXPECT_TRUE(Certifies(renewed, *Key(credential_.key_uri)));
  EXPECT_EQ(PrivateKeyCount(), 1);
  EXPECT_FALSE(std::filesystem::exists(credential_.certificate_path + ".next"));
}

}  // namespace
}  // namespace devid::sdk
