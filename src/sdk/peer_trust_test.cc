// PeerTrust's cache rules with a fake clock and a PKI made here: what Install accepts and refuses
// (each refusal leaves the cache file as it was), the age bound, revocation, and reloading.

#include "devid/peer_trust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include <filesystem>

#include "base/file.h"
#include "ossl/revocation_handles.h"

namespace devid::sdk {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;
using ::testing::HasSubstr;

ossl::UniquePtr<EVP_PKEY> NewKey() { return ossl::UniquePtr<EVP_PKEY>(EVP_EC_gen("P-256")); }

void AddExtension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, certificate, nullptr, nullptr, 0);
  ossl::UniquePtr<X509_EXTENSION> extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  ASSERT_NE(extension, nullptr);
  X509_add_ext(certificate, extension.get(), -1);
}

// MakeCertificate issues a certificate for key: a root CA when issuer is null, else a device
// certificate for TLS client authentication.
pki::Certificate MakeCertificate(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                                 long serial, system_clock::time_point now) {
  ossl::UniquePtr<X509> x509(X509_new());
  X509_set_version(x509.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), serial);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x509.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x509.get(),
                       issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x509.get()));
  time_t not_before = system_clock::to_time_t(now - hours(1));
  time_t not_after = system_clock::to_time_t(now + hours(24 * 365));
  ASN1_TIME_set(X509_getm_notBefore(x509.get()), not_before);
  ASN1_TIME_set(X509_getm_notAfter(x509.get()), not_after);
  X509_set_pubkey(x509.get(), key);
  X509* signer = issuer ? issuer : x509.get();
  AddExtension(x509.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer == nullptr) {
    AddExtension(x509.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(x509.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(x509.get(), signer, NID_authority_key_identifier, "keyid:always");
    AddExtension(x509.get(), signer, NID_key_usage, "critical,digitalSignature");
    AddExtension(x509.get(), signer, NID_ext_key_usage, "clientAuth");
  }
  EXPECT_GT(X509_sign(x509.get(), issuer_key ? issuer_key : key, EVP_sha256()), 0);
  return pki::Certificate::Adopt(std::move(x509));
}

// MakeCrl signs a CRL valid from this_update for a week, listing revoked_serial when not 0.
std::string MakeCrl(const pki::Certificate& ca, EVP_PKEY* ca_key,
                    system_clock::time_point this_update, long revoked_serial = 0) {
  ossl::UniquePtr<X509_CRL> crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.get()));
  time_t from = system_clock::to_time_t(this_update);
  time_t until = system_clock::to_time_t(this_update + hours(24 * 7));
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(ASN1_TIME_set(nullptr, from),
                                                             ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(ASN1_TIME_set(nullptr, until),
                                                             ASN1_TIME_free);
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  if (revoked_serial != 0) {
    X509_REVOKED* revoked = X509_REVOKED_new();
    ossl::UniquePtr<ASN1_INTEGER> serial(ASN1_INTEGER_new());
    ASN1_INTEGER_set(serial.get(), revoked_serial);
    X509_REVOKED_set_serialNumber(revoked, serial.get());
    X509_REVOKED_set_revocationDate(revoked, last.get());
    X509_CRL_add0_revoked(crl.get(), revoked);  // crl takes ownership.
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.get(), nullptr, nullptr, crl.get(), 0);
  X509V3_EXT_CRL_add_conf(nullptr, &ctx, "authorityKeyIdentifier", crl.get());
  EXPECT_GT(X509_CRL_sign(crl.get(), ca_key, EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int size = i2d_X509_CRL(crl.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

class PeerTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("peer-trust-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    root_key_ = NewKey();
    peer_key_ = NewKey();
    root_.emplace(MakeCertificate("Root", root_key_.get(), nullptr, nullptr, 1, clock_.Now()));
    peer_.emplace(MakeCertificate("peer-b", peer_key_.get(), root_->get(), root_key_.get(), 77,
                                  clock_.Now()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  PeerTrust Open(std::chrono::seconds max_age = hours(24)) {
    auto trust = PeerTrust::Open({.directory = dir_.string(), .max_crl_age = max_age}, clock_);
    EXPECT_TRUE(trust) << trust.error().message();
    return std::move(*trust);
  }
  std::vector<pki::Certificate> Cas() {
    std::vector<pki::Certificate> cas;
    cas.push_back(root_->Clone());
    return cas;
  }
  std::string Cache() { return ReadFile((dir_ / "peer-trust.pem").string()).value_or(""); }

  FakeClock clock_{system_clock::from_time_t(1'800'000'000)};
  std::filesystem::path dir_;
  ossl::UniquePtr<EVP_PKEY> root_key_;
  ossl::UniquePtr<EVP_PKEY> peer_key_;
  std::optional<pki::Certificate> root_;
  std::optional<pki::Certificate> peer_;
};

TEST_F(PeerTrustTest, EmptyCache_RefusesEveryPeer) {
  PeerTrust trust = Open();
  auto verified = trust.VerifyPeer(*peer_, {});
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(verified.error().message(), HasSubstr("no peer trust is cached"));
}

TEST_F(PeerTrustTest, Installed_AcceptsUntilTheAgeBoundThenRefuses) {
  PeerTrust trust = Open(hours(2));
  ASSERT_TRUE(trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now())}));
  auto verified = trust.VerifyPeer(*peer_, {}, "peer-b");
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->name, "peer-b");
  EXPECT_EQ(verified->serial, "4D");

  auto other = trust.VerifyPeer(*peer_, {}, "peer-c");
  ASSERT_FALSE(other);
  EXPECT_THAT(other.error().message(), HasSubstr("it is peer-b, not the expected peer peer-c"));

  clock_.Advance(hours(2) + std::chrono::seconds(1));
  auto stale = trust.VerifyPeer(*peer_, {});
  ASSERT_FALSE(stale);
  EXPECT_THAT(stale.error().message(),
              HasSubstr("the cached CRLs are 7201 s old, more than the bound of 7200 s"));
}

TEST_F(PeerTrustTest, RevokedPeer_Refused) {
  PeerTrust trust = Open();
  ASSERT_TRUE(trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now(), 77)}));
  auto verified = trust.VerifyPeer(*peer_, {});
  ASSERT_FALSE(verified);
  EXPECT_THAT(verified.error().message(), HasSubstr("peer CN=peer-b refused: certificate revoked"));
}

TEST_F(PeerTrustTest, RefusedInstalls_KeepTheLastGoodCopy) {
  PeerTrust trust = Open();
  ASSERT_TRUE(trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now())}));
  std::string good = Cache();
  system_clock::time_point fetched = trust.fetched_at();
  clock_.Advance(hours(1));

  std::string tampered = MakeCrl(*root_, root_key_.get(), clock_.Now(), 77);
  tampered[tampered.size() - 5] ^= 1;  // inside the signature
  auto bad_signature = trust.Install(Cas(), {tampered});
  ASSERT_FALSE(bad_signature);
  EXPECT_EQ(bad_signature.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(bad_signature.error().message(), HasSubstr("not signed by any cached CA"));

  auto foreign_key = NewKey();
  auto foreign = trust.Install(Cas(), {MakeCrl(*root_, foreign_key.get(), clock_.Now())});
  ASSERT_FALSE(foreign);
  EXPECT_THAT(foreign.error().message(), HasSubstr("not signed by any cached CA"));

  auto missing = trust.Install(Cas(), {});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr("no CRL signed by CA CN=Root"));

  auto expired =
      trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now() - hours(24 * 8))});
  ASSERT_FALSE(expired);
  EXPECT_THAT(expired.error().message(), HasSubstr("is not current"));

  auto older = trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now() - hours(2))});
  ASSERT_FALSE(older);
  EXPECT_THAT(older.error().message(), HasSubstr("older than the cached one"));

  std::vector<pki::Certificate> no_root;
  no_root.push_back(peer_->Clone());
  auto rootless = trust.Install(std::move(no_root), {});
  ASSERT_FALSE(rootless);
  EXPECT_THAT(rootless.error().message(), HasSubstr("no self-signed root"));

  EXPECT_EQ(Cache(), good);
  EXPECT_EQ(trust.fetched_at(), fetched);
  EXPECT_TRUE(trust.VerifyPeer(*peer_, {}));
}

TEST_F(PeerTrustTest, Reopened_SameTrust_TamperedFileRefused) {
  {
    PeerTrust trust = Open();
    ASSERT_TRUE(trust.Install(Cas(), {MakeCrl(*root_, root_key_.get(), clock_.Now(), 77)}));
  }
  PeerTrust reopened = Open();
  EXPECT_EQ(reopened.ca_count(), 1u);
  EXPECT_EQ(reopened.crl_count(), 1u);
  EXPECT_EQ(reopened.fetched_at(), clock_.Now());
  EXPECT_THAT(reopened.VerifyPeer(*peer_, {}).error().message(), HasSubstr("certificate revoked"));

  std::string text = Cache();
  size_t end = text.rfind("-----END X509 CRL-----");
  ASSERT_NE(end, std::string::npos);
  text[end - 10] = text[end - 10] == 'A' ? 'B' : 'A';
  ASSERT_TRUE(WriteFileAtomically((dir_ / "peer-trust.pem").string(), text, 0644));
  auto tampered = PeerTrust::Open({.directory = dir_.string()}, clock_);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(tampered.error().message(), HasSubstr("loading the peer trust cache"));
}

}  // namespace
}  // namespace devid::sdk
