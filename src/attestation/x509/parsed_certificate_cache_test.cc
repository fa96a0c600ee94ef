// ParsedCertificateCache: decodes each encoding once, answers by content, never caches a failure.

#include "attestation/x509/parsed_certificate_cache.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/random.h"
#include "ca/testing/mini_ca.h"

namespace devid::attestation {
namespace {

class X509ParsedCertificateCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
  }
  const pki::Certificate& Root() const { return authority_->roots().front(); }
  const pki::Certificate& Intermediate() const {
    return authority_->issuers().front().certificate;
  }

  SystemClock clock_;
  SecureRandom random_;
  std::unique_ptr<ca::Authority> authority_;
};

TEST_F(X509ParsedCertificateCacheTest, Accepts_SameEncodingOnceDecoded) {
  ParsedCertificateCache cache;
  auto first = cache.FromPem(Root().ToPem());
  auto again = cache.FromPem(Root().ToPem());
  ASSERT_TRUE(first && again);
  EXPECT_EQ(first->get(), again->get());
  EXPECT_EQ((*first)->sha256_thumbprint, Root().Sha256Thumbprint());
  EXPECT_EQ((*first)->certificate.ToDer(), Root().ToDer());
}

TEST_F(X509ParsedCertificateCacheTest, Accepts_OtherBytesAsAnotherCertificate) {
  ParsedCertificateCache cache;
  auto root = cache.FromDer(Root().ToDer());
  auto intermediate = cache.FromDer(Intermediate().ToDer());
  ASSERT_TRUE(root && intermediate);
  EXPECT_NE((*root)->sha256_thumbprint, (*intermediate)->sha256_thumbprint);
  EXPECT_EQ((*intermediate)->sha256_thumbprint, Intermediate().Sha256Thumbprint());
}

TEST_F(X509ParsedCertificateCacheTest, Rejects_GarbageEveryTime) {
  ParsedCertificateCache cache;
  for (int i = 0; i < 2; ++i) {
    auto parsed = cache.FromDer("not a certificate");
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(X509ParsedCertificateCacheTest, Accepts_PastCapacity) {
  ParsedCertificateCache cache(/*capacity=*/1);
  auto root = cache.FromDer(Root().ToDer());
  auto intermediate = cache.FromDer(Intermediate().ToDer());
  auto root_again = cache.FromDer(Root().ToDer());
  ASSERT_TRUE(root && intermediate && root_again);
  EXPECT_EQ((*root_again)->sha256_thumbprint, Root().Sha256Thumbprint());
  // Entries handed out stay valid after the cache forgot them.
  EXPECT_EQ((*root)->certificate.ToDer(), Root().ToDer());
}

}  // namespace
}  // namespace devid::attestation
