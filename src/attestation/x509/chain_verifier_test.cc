// VerifyChain with devid's production policy on certificates from a test CA: what it accepts and
// each refusal the X.509 attestation depends on.

#include "attestation/x509/chain_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "base/clock.h"
#include "base/random.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"

namespace devid::attestation {
namespace {

using ::testing::HasSubstr;

class ChainVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
  }

  pki::Certificate Issue(std::string_view profile, const std::string& cn) {
    ca::CertificateRequest request{.common_name = cn};
    if (profile == ca::kServerProfile) request.dns_names = {cn};
    auto issued = ca::IssueTlsIdentity(*authority_, profile, request);
    EXPECT_TRUE(issued) << issued.error().message();
    return std::move(issued->certificate);
  }

  const pki::Certificate& Intermediate() const { return authority_->issuers().front().certificate; }
  const pki::Certificate& Root() const { return authority_->roots().front(); }

  // Chain copies certificates into the untrusted list a peer would send.
  static std::vector<pki::Certificate> Chain(std::initializer_list<const pki::Certificate*> list) {
    std::vector<pki::Certificate> out;
    for (const pki::Certificate* certificate : list) out.push_back(certificate->Clone());
    return out;
  }

  Result<std::vector<pki::Certificate>> Verify(const pki::Certificate& leaf,
                                               const std::vector<pki::Certificate>& untrusted,
                                               ChainPolicy policy = ClientPolicy()) {
    return VerifyChain(leaf, untrusted, std::span(&Root(), 1), {}, clock_.Now(), policy);
  }

  static ChainPolicy ClientPolicy() {
    ChainPolicy policy;
    policy.purpose = X509_PURPOSE_SSL_CLIENT;
    policy.check_revocation = false;  // revocation has its own tests, with CRLs
    return policy;
  }

  // Resign replaces leaf's signature with one by the issuing CA's key under digest (to make
  // SHA-1-signed certificates, which devid's own CA never issues).
  pki::Certificate Resign(const pki::Certificate& leaf, const EVP_MD* digest, EVP_PKEY* key) {
    ossl::UniquePtr<X509> copy(X509_dup(leaf.get()));
    EXPECT_GT(X509_sign(copy.get(), key, digest), 0);
    return pki::Certificate::Adopt(std::move(copy));
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::unique_ptr<ca::Authority> authority_;
};

TEST_F(ChainVerifierTest, AcceptsDeviceCertificateWithIntermediate_ReturnsThePath) {
  pki::Certificate leaf = Issue(ca::kDeviceClientProfile, "device-1");
  auto path = Verify(leaf, Chain({&Intermediate()}));
  ASSERT_TRUE(path) << path.error().message();
  ASSERT_EQ(path->size(), 3u);
  EXPECT_EQ((*path)[0].ToDer(), leaf.ToDer());
  EXPECT_EQ((*path)[2].ToDer(), Root().ToDer());
}

TEST_F(ChainVerifierTest, Refuses_ChainWithoutItsIntermediate) {
  auto path = Verify(Issue(ca::kDeviceClientProfile, "device-1"), {});
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(path.error().message(), HasSubstr("unable to get local issuer certificate"));
}

TEST_F(ChainVerifierTest, Refuses_LeafWithoutClientAuth) {
  auto path = Verify(Issue(ca::kServerProfile, "server.example"), Chain({&Intermediate()}));
  ASSERT_FALSE(path);
  EXPECT_THAT(path.error().message(), HasSubstr("unsuitable certificate purpose"));
}

TEST_F(ChainVerifierTest, Refuses_ExpiredAndNotYetValid) {
  pki::Certificate leaf = Issue(ca::kDeviceClientProfile, "device-1");
  auto later = VerifyChain(leaf, Chain({&Intermediate()}), std::span(&Root(), 1), {},
                           clock_.Now() + std::chrono::hours(24 * 400), ClientPolicy());
  ASSERT_FALSE(later);
  EXPECT_THAT(later.error().message(), HasSubstr("certificate has expired at depth 0"));
  EXPECT_THAT(later.error().message(), HasSubstr("CN=device-1"));
  auto earlier = VerifyChain(leaf, Chain({&Intermediate()}), std::span(&Root(), 1), {},
                             clock_.Now() - std::chrono::hours(1), ClientPolicy());
  ASSERT_FALSE(earlier);
  EXPECT_THAT(earlier.error().message(), HasSubstr("certificate is not yet valid"));
}

TEST_F(ChainVerifierTest, Refuses_UntrustedRoot) {
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  auto issued = ca::IssueTlsIdentity(**other, ca::kDeviceClientProfile, {.common_name = "d"});
  ASSERT_TRUE(issued);
  auto path = Verify(issued->certificate,
                     Chain({&(*other)->issuers().front().certificate, &(*other)->roots().front()}));
  ASSERT_FALSE(path);
  EXPECT_THAT(path.error().message(), HasSubstr("self-signed certificate in certificate chain"));
}

TEST_F(ChainVerifierTest, Refuses_Sha1SignatureAndRsa1024Keys) {
  // A CA whose issuing key we keep, to sign what devid's own CA never would.
  auto issuing = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(issuing);
  EVP_PKEY_up_ref(issuing->get());
  ossl::UniquePtr<EVP_PKEY> issuing_copy(issuing->get());
  auto key = keys::SoftwareKey(std::move(*issuing), "test:issuing");
  ASSERT_TRUE(key);
  auto authority = ca::testing::MakeTestCa(clock_, random_, {}, keys::KeyAlgorithm::kEcdsaP256,
                                           nullptr, std::move(*key));
  ASSERT_TRUE(authority);
  authority_ = std::move(*authority);
  pki::Certificate leaf = Issue(ca::kDeviceClientProfile, "device-1");
  ASSERT_TRUE(Verify(leaf, Chain({&Intermediate()})));

  auto sha1 = Verify(Resign(leaf, EVP_sha1(), issuing_copy.get()), Chain({&Intermediate()}));
  ASSERT_FALSE(sha1);
  EXPECT_THAT(sha1.error().message(), HasSubstr("signed with SHA1"));

  ossl::UniquePtr<EVP_PKEY> rsa(EVP_RSA_gen(1024));
  ASSERT_TRUE(rsa);
  ossl::UniquePtr<X509> weak(X509_dup(leaf.get()));
  ASSERT_TRUE(X509_set_pubkey(weak.get(), rsa.get()));
  // Signed in place: X509_sign re-encodes the modified TBSCertificate (a copy would not).
  ASSERT_GT(X509_sign(weak.get(), issuing_copy.get(), EVP_sha256()), 0);
  auto rsa_path = Verify(pki::Certificate::Adopt(std::move(weak)), Chain({&Intermediate()}));
  ASSERT_FALSE(rsa_path);
  EXPECT_THAT(rsa_path.error().message(), HasSubstr("RSA key of 1024 bits"));
}

TEST_F(ChainVerifierTest, Refuses_PathLongerThanAllowed) {
  ChainPolicy policy = ClientPolicy();
  policy.max_intermediates = 0;
  auto path = Verify(Issue(ca::kDeviceClientProfile, "device-1"), Chain({&Intermediate()}), policy);
  ASSERT_FALSE(path);
  EXPECT_THAT(path.error().message(), HasSubstr("certificate chain too long"));
}

TEST_F(ChainVerifierTest, RequiresCrlsWhenCheckingRevocation) {
  ChainPolicy policy = ClientPolicy();
  policy.check_revocation = true;
  auto path = Verify(Issue(ca::kDeviceClientProfile, "device-1"), Chain({&Intermediate()}), policy);
  ASSERT_FALSE(path);
  EXPECT_THAT(path.error().message(), HasSubstr("unable to get certificate CRL"));
  auto bad = VerifyChain(Issue(ca::kDeviceClientProfile, "device-1"), Chain({&Intermediate()}),
                         std::span(&Root(), 1), std::vector<std::string>{"not a crl"}, clock_.Now(),
                         policy);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::attestation
