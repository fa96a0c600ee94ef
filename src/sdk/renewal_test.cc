#include "devid/renewal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include "base/file.h"
#include "ca/authority.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "sdk/testing/fake_reenroller.h"
#include "sdk/testing/renewal_fixture.h"

namespace devid::sdk {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using ::testing::HasSubstr;
using testing::FakeReenroller;
using testing::FixedRandom;

constexpr char kDevice[] = "device-1";

class RenewalTest : public testing::RenewalFixture {
 protected:
  void SetUp() override {
    SetUpCas("devid-renewal-");
    if (HasFatalFailure()) return;
    credential_.certificate_path = dir_ + "/device.pem";
    credential_.key_uri = "file:" + dir_ + "/device.key?passphrase-env=DEVICE_KEY_PASSPHRASE";
    ASSERT_TRUE(CreateDeviceKey(credential_.key_uri, "ecdsa-p256", key_options_).has_value());
    auto key = OpenDeviceKey(credential_.key_uri, key_options_);
    ASSERT_TRUE(key.has_value()) << key.error().message();
    auto certificate = authority_->Issue(
        ca::kDeviceClientProfile,
        {.common_name = kDevice, .public_key = (*key)->public_key(), .validity = hours(30 * 24)});
    ASSERT_TRUE(certificate.has_value()) << certificate.error().message();
    issued_at_ = certificate->NotBefore();
    ASSERT_TRUE(WriteFileAtomically(
        credential_.certificate_path,
        certificate->ToPem() + authority_->issuers().front().certificate.ToPem(), 0600));
  }

  CertificateRenewer Renewer(RenewalPolicy policy = {}) {
    return CertificateRenewer(credential_, authority_->roots().front().ToPem(), policy,
                              key_options_, *reenroller_, clock_, jitter_);
  }

  std::string CertificateFile() { return *ReadFile(credential_.certificate_path); }
  std::string KeyFile() { return *ReadFile(dir_ + "/device.key"); }
  pki::Certificate CurrentCertificate() { return *pki::Certificate::FromPem(CertificateFile()); }
  std::shared_ptr<const keys::Key> CurrentKey() {
    return *OpenDeviceKey(credential_.key_uri, key_options_);
  }
  // PendingKey makes the key a renewal makes beside the device key, as it would.
  std::shared_ptr<const keys::Key> PendingKey() {
    std::string uri = "file:" + dir_ + "/device.key.next?passphrase-env=DEVICE_KEY_PASSPHRASE";
    EXPECT_TRUE(CreateDeviceKey(uri, "ecdsa-p256", key_options_).has_value());
    return *OpenDeviceKey(uri, key_options_);
  }
  bool PendingFilesLeft() {
    return std::filesystem::exists(dir_ + "/device.key.next") ||
           std::filesystem::exists(dir_ + "/device.pem.next");
  }

  DeviceKeyOptions key_options_{
      .getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "DEVICE_KEY_PASSPHRASE") return "correct horse battery staple";
        return std::nullopt;
      }};
  DeviceCredential credential_;
  std::chrono::system_clock::time_point issued_at_;
};

TEST_F(RenewalTest, NotDue_BeforeTwoThirdsOfTheLifetime_SendsNothing) {
  clock_.Set(issued_at_ + hours(19 * 24));
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_FALSE(report->renewed);
  auto certificate = CurrentCertificate();
  EXPECT_EQ(report->due,
            certificate.NotBefore() + (certificate.NotAfter() - certificate.NotBefore()) * 2 / 3);
  EXPECT_EQ(report->subject, std::string("CN=") + kDevice);
  EXPECT_EQ(reenroller_->calls, 0);
}

TEST_F(RenewalTest, DueAt_FollowsTheConfiguredFraction) {
  auto certificate = CurrentCertificate();
  // The issuer backdates notBefore a little for clock skew; the lifetime counts from there.
  EXPECT_EQ(RenewalDueAt(certificate, 0.5),
            certificate.NotBefore() + (certificate.NotAfter() - certificate.NotBefore()) / 2);
  EXPECT_EQ(RenewalDueAt(certificate, 1.0), certificate.NotAfter());
  clock_.Set(issued_at_ + hours(16 * 24));
  auto renewer = Renewer({.renew_at_fraction = 0.5});
  auto report = renewer.RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
}

TEST_F(RenewalTest, Renews_WhenDue_WithANewKeyAndTheSameSubject) {
  auto old_certificate = CurrentCertificate();
  std::string old_key_file = KeyFile();
  clock_.Set(issued_at_ + hours(21 * 24));
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
  EXPECT_FALSE(reenroller_->last_new_key_is_current);

  auto renewed = CurrentCertificate();
  EXPECT_EQ(report->serial, renewed.SerialHex());
  EXPECT_NE(renewed.SerialHex(), old_certificate.SerialHex());
  EXPECT_EQ(renewed.SubjectName(), old_certificate.SubjectName());
  auto key = CurrentKey();
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(renewed.get()), key->public_key()), 1);
  EXPECT_NE(EVP_PKEY_eq(X509_get0_pubkey(old_certificate.get()), key->public_key()), 1);
  EXPECT_NE(KeyFile(), old_key_file);
  EXPECT_FALSE(PendingFilesLeft());
  // The file holds the path without the anchor, and only its owner may read it.
  auto chain = pki::Certificate::AllFromPem(CertificateFile());
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->size(), 2u);
  struct stat info {};
  ASSERT_EQ(::stat(credential_.certificate_path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/device.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(RenewalTest, Force_RenewsBeforeDue) {
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
  EXPECT_EQ(reenroller_->calls, 1);
}

TEST_F(RenewalTest, SameKey_KeepsTheKeyFile) {
  std::string old_key_file = KeyFile();
  std::string old_serial = CurrentCertificate().SerialHex();
  auto renewer = Renewer({.new_key = false});
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_TRUE(report->renewed);
  EXPECT_TRUE(reenroller_->last_new_key_is_current);
  EXPECT_EQ(KeyFile(), old_key_file);
  EXPECT_NE(CurrentCertificate().SerialHex(), old_serial);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(CurrentCertificate().get()), CurrentKey()->public_key()),
            1);
}

struct FailureCase {
  const char* name;
  FakeReenroller::Answer answer;
  ErrorCode code;
  const char* message;
};

class RenewalFailureTest : public RenewalTest, public ::testing::WithParamInterface<FailureCase> {};

TEST_P(RenewalFailureTest, Fails_LeavingTheCredentialAndBackingOff) {
  const FailureCase& failure = GetParam();
  std::string certificate_file = CertificateFile();
  std::string key_file = KeyFile();
  reenroller_->answer = failure.answer;
  clock_.Set(issued_at_ + hours(21 * 24));
  auto renewer = Renewer();

  auto report = renewer.RenewIfDue();
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), failure.code) << report.error().message();
  EXPECT_THAT(report.error().message(), HasSubstr(failure.message));
  EXPECT_EQ(CertificateFile(), certificate_file);
  EXPECT_EQ(KeyFile(), key_file);
  EXPECT_FALSE(PendingFilesLeft());
  // The first retry waits half to all of a minute (jitter 0x00: the half).
  EXPECT_EQ(renewer.next_attempt(), clock_.Now() + seconds(30));

  // Before then nothing is sent; the report names the retry time.
  clock_.Advance(seconds(29));
  auto waiting = renewer.RenewIfDue();
  ASSERT_TRUE(waiting.has_value()) << waiting.error().message();
  EXPECT_FALSE(waiting->renewed);
  EXPECT_EQ(waiting->due, renewer.next_attempt());
  EXPECT_EQ(reenroller_->calls, 1);

  // The second failure waits twice as long; a good answer then renews.
  clock_.Advance(seconds(1));
  ASSERT_FALSE(renewer.RenewIfDue().has_value());
  EXPECT_EQ(renewer.next_attempt(), clock_.Now() + seconds(60));
  EXPECT_EQ(CertificateFile(), certificate_file);
  reenroller_->answer = FakeReenroller::Answer::kIssue;
  clock_.Advance(seconds(60));
  auto renewed = renewer.RenewIfDue();
  ASSERT_TRUE(renewed.has_value()) << renewed.error().message();
  EXPECT_TRUE(renewed->renewed);
  EXPECT_EQ(renewer.next_attempt(), std::chrono::system_clock::time_point{});
}

INSTANTIATE_TEST_SUITE_P(
    EachFailure, RenewalFailureTest,
    ::testing::Values(
        FailureCase{"ServerUnreachable", FakeReenroller::Answer::kUnreachable,
                    ErrorCode::kUnavailable, "refused"},
        FailureCase{"CertificateForAnotherKey", FakeReenroller::Answer::kOtherKey,
                    ErrorCode::kFailedPrecondition, "is not for the key"},
        FailureCase{"CertificateForAnotherDevice", FakeReenroller::Answer::kOtherSubject,
                    ErrorCode::kFailedPrecondition, "names CN=device-2, not this device's"},
        FailureCase{"CertificateFromAnotherCa", FakeReenroller::Answer::kOtherCa,
                    ErrorCode::kUnauthenticated, "does not verify to your trust bundle"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RetryBackoffTest, Doubles_WithJitter_UpToTheMaximum) {
  FixedRandom longest(0xff);
  RetryBackoff backoff(seconds(60), seconds(300), longest);
  EXPECT_EQ(backoff.Failed(), seconds(60));
  EXPECT_EQ(backoff.Failed(), seconds(120));
  EXPECT_EQ(backoff.Failed(), seconds(240));
  EXPECT_EQ(backoff.Failed(), seconds(300));
  EXPECT_EQ(backoff.Failed(), seconds(300));
  EXPECT_EQ(backoff.failures(), 5);
  backoff.Succeeded();
  FixedRandom shortest(0x00);
  RetryBackoff fresh(seconds(60), seconds(300), shortest);
  EXPECT_EQ(fresh.Failed(), seconds(30));
}

TEST_F(RenewalTest, Rejects_AKeyThatIsNotTheCertificates) {
  std::string other_uri = "file:" + dir_ + "/other.key?passphrase-env=DEVICE_KEY_PASSPHRASE";
  ASSERT_TRUE(CreateDeviceKey(other_uri, "ecdsa-p256", key_options_).has_value());
  credential_.key_uri = other_uri;
  std::string certificate_file = CertificateFile();
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(report.error().message(), HasSubstr("is not the key of the certificate"));
  EXPECT_EQ(reenroller_->calls, 0);
  EXPECT_EQ(CertificateFile(), certificate_file);
}

TEST_F(RenewalTest, Rejects_ANewKeyBesideATokenKeyWithoutALabel_WithoutTryingOrBackingOff) {
  credential_.key_uri = "pkcs11:token=device;id=%01?pin-source=pin.txt";
  auto renewer = Renewer();
  auto report = renewer.RenewIfDue(/*force=*/true);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(report.error().message(), HasSubstr("has no object label"));
  EXPECT_EQ(reenroller_->calls, 0);
  EXPECT_EQ(renewer.next_attempt(), std::chrono::system_clock::time_point{});
}

TEST_F(RenewalTest, InterruptedCommit_AfterTheKeyMoved_IsCompletedByTheNextCall) {
  // What a power loss between the two renames leaves: the new key in place, the new certificate
  // still pending.
  auto next = PendingKey();
  auto renewed = authority_->Issue(
      ca::kDeviceClientProfile,
      {.common_name = kDevice, .public_key = next->public_key(), .validity = hours(30 * 24)});
  ASSERT_TRUE(renewed.has_value());
  ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path + ".next", renewed->ToPem(), 0600));
  std::filesystem::rename(dir_ + "/device.key.next", dir_ + "/device.key");

  auto renewer = Renewer();
  auto report = renewer.RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_FALSE(report->renewed);
  EXPECT_EQ(report->serial, renewed->SerialHex());
  EXPECT_EQ(CurrentCertificate().SerialHex(), renewed->SerialHex());
  EXPECT_FALSE(PendingFilesLeft());
}

TEST_F(RenewalTest, InterruptedCommit_BeforeTheKeyMoved_IsUndoneByTheNextCall) {
  std::string certificate_file = CertificateFile();
  std::string key_file = KeyFile();
  auto next = PendingKey();
  auto renewed = authority_->Issue(
      ca::kDeviceClientProfile,
      {.common_name = kDevice, .public_key = next->public_key(), .validity = hours(30 * 24)});
  ASSERT_TRUE(renewed.has_value());
  ASSERT_TRUE(WriteFileAtomically(credential_.certificate_path + ".next", renewed->ToPem(), 0600));

  auto renewer = Renewer();
  auto report = renewer.RenewIfDue();
  ASSERT_TRUE(report.has_value()) << report.error().message();
  EXPECT_EQ(CertificateFile(), certificate_file);
  EXPECT_EQ(KeyFile(), key_file);
  EXPECT_FALSE(PendingFilesLeft());
}

}  // namespace
}  // namespace devid::sdk
