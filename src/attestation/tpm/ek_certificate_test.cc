// EK certificate checks on certificates from a test CA standing in for a TPM manufacturer; the
// swtpm tests do the same with swtpm's own local CA.

#include "attestation/tpm/ek_certificate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/random.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "tpm/testing/software_tpm.h"

namespace devid::attestation {
namespace {

using ::testing::HasSubstr;

class EkCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto manufacturer = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(manufacturer) << manufacturer.error().message();
    manufacturer_ = std::move(*manufacturer);
    auto bundle = LoadEkManufacturerRoots(manufacturer_->roots().front().ToPem() +
                                          manufacturer_->issuers().front().certificate.ToPem());
    ASSERT_TRUE(bundle) << bundle.error().message();
    roots_ = std::move(*bundle);
  }

  // EkCertificate has ca certify the public key of tpm's EK, as a TPM vendor does at manufacture.
  static std::vector<uint8_t> EkCertificate(const ca::Authority& ca,
                                            const tpm::testing::SoftwareTpm& tpm) {
    auto key = tpm.ek().ToEvp();
    auto issued = ca.Issue(ca::kDeviceClientProfile,
                           {.common_name = "tpm-ek", .public_key = key->get()});
    EXPECT_TRUE(issued) << issued.error().message();
    std::string der = issued->ToDer();
    return std::vector<uint8_t>(der.begin(), der.end());
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::unique_ptr<ca::Authority> manufacturer_;
  EkManufacturerRoots roots_;
  tpm::testing::SoftwareTpm device_;
};

TEST_F(EkCertificateTest, Splits_BundleIntoAnchorsAndIntermediates) {
  EXPECT_EQ(roots_.anchors.size(), 1u);
  EXPECT_EQ(roots_.intermediates.size(), 1u);
  EXPECT_FALSE(LoadEkManufacturerRoots(""));
  auto no_root = LoadEkManufacturerRoots(manufacturer_->issuers().front().certificate.ToPem());
  ASSERT_FALSE(no_root);
  EXPECT_THAT(no_root.error().message(), HasSubstr("no self-signed root"));
}

TEST_F(EkCertificateTest, Accepts_CertificateOfTheEkFromTheManufacturer) {
  Status ok = VerifyEkCertificate(EkCertificate(*manufacturer_, device_), device_.ek(), roots_,
                                  clock_.Now());
  EXPECT_TRUE(ok) << ok.error().message();
}

TEST_F(EkCertificateTest, Rejects_CertificateFromAnUntrustedRoot) {
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  Status s = VerifyEkCertificate(EkCertificate(**other, device_), device_.ek(), roots_,
                                 clock_.Now());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(s.error().message(), HasSubstr("does not validate to a TPM manufacturer root"));
}

TEST_F(EkCertificateTest, Rejects_CertificateForAnotherKey) {
  tpm::testing::SoftwareTpm other;
  Status s = VerifyEkCertificate(EkCertificate(*manufacturer_, other), device_.ek(), roots_,
                                 clock_.Now());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(s.error().message(), HasSubstr("for another key than the endorsement key"));
}

TEST_F(EkCertificateTest, Rejects_ExpiredCertificateAndGarbage) {
  std::vector<uint8_t> der = EkCertificate(*manufacturer_, device_);
  Status expired = VerifyEkCertificate(der, device_.ek(), roots_,
                                       clock_.Now() + std::chrono::hours(24 * 365 * 30));
  ASSERT_FALSE(expired);
  EXPECT_THAT(expired.error().message(), HasSubstr("expired"));
  Status garbage = VerifyEkCertificate(std::vector<uint8_t>{1, 2, 3}, device_.ek(), roots_,
                                       clock_.Now());
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::attestation
