#include "ca/authority.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>

#include "ca/testing/mini_ca.h"
#include "ca/testing/test_csr.h"
#include "pki/csr.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/testing/softhsm_token.h"

namespace devid::ca {
namespace {

using keys::KeyAlgorithm;
using keys::testing::RunShell;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/devid-ca-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& data) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << data;
    return file;
  }

 private:
  std::string path_;
};

ossl::UniquePtr<EVP_PKEY> SubjectKey(KeyAlgorithm algorithm = KeyAlgorithm::kEcdsaP256) {
  auto key = keys::GenerateSoftwareKey(algorithm);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

// OpensslVerify runs the real `openssl verify -x509_strict` on leaf with the authority's roots as
// trust anchors and its issuing CAs as untrusted intermediates.
std::string OpensslVerify(const Authority& authority, const pki::Certificate& leaf,
                          const std::string& purpose) {
  TempDir dir;
  std::string intermediates;
  for (const IssuingCa& issuer : authority.issuers()) intermediates += issuer.certificate.ToPem();
  std::string command = "openssl verify -x509_strict -purpose " + purpose + " -CAfile " +
                        dir.Write("roots.pem", authority.TrustBundlePem()) + " -untrusted " +
                        dir.Write("issuers.pem", intermediates) + " " +
                        dir.Write("leaf.pem", leaf.ToPem());
  std::string output;
  int status = RunShell(command, &output);
  return status == 0 ? "" : "exit " + std::to_string(status) + ": " + output;
}

std::string ExtensionText(const pki::Certificate& certificate, int nid) {
  int index = X509_get_ext_by_NID(certificate.get(), nid, -1);
  if (index < 0) return "";
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509V3_EXT_print(bio.get(), X509_get_ext(certificate.get(), index), 0, 0);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

class AuthorityTest : public ::testing::Test {
 protected:
  SystemClock clock_;  // the openssl binary checks validity against the real time
  SecureRandom random_;
  AuthorityOptions options_{.base_url = "https://ca.example.com:8443"};
};

TEST_F(AuthorityTest, Issues_DeviceClientCertificate_ThatOpensslVerifies) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority.has_value()) << authority.error().message();
  auto subject_key = SubjectKey();
  auto leaf = (*authority)
                  ->Issue(kDeviceClientProfile,
                          {.common_name = "device-0001", .public_key = subject_key.get()});
  ASSERT_TRUE(leaf.has_value()) << leaf.error().message();

  EXPECT_EQ(leaf->SubjectCommonName(), "device-0001");
  EXPECT_EQ(leaf->SerialHex().size(), 32u);  // 128 bits, top bit clear, no sign octet
  EXPECT_EQ(OpensslVerify(**authority, *leaf, "sslclient"), "");
  EXPECT_TRUE((*authority)->Verify(*leaf, X509_PURPOSE_SSL_CLIENT).has_value());
  EXPECT_FALSE((*authority)->Verify(*leaf, X509_PURPOSE_SSL_SERVER).has_value());

  EXPECT_EQ(ExtensionText(*leaf, NID_basic_constraints), "CA:FALSE");
  EXPECT_EQ(ExtensionText(*leaf, NID_key_usage), "Digital Signature");
  EXPECT_EQ(ExtensionText(*leaf, NID_ext_key_usage), "TLS Web Client Authentication");
  std::string issuer_id = KeyIdHex((*authority)->issuers().front().certificate);
  EXPECT_NE(ExtensionText(*leaf, NID_crl_distribution_points)
                .find("URI:https://ca.example.com:8443/crl/" + issuer_id + ".crl"),
            std::string::npos);
  std::string aia = ExtensionText(*leaf, NID_info_access);
  EXPECT_NE(aia.find("OCSP - URI:https://ca.example.com:8443/ocsp"), std::string::npos) << aia;
  EXPECT_FALSE(KeyIdHex(*leaf).empty());
  EXPECT_NE(ExtensionText(*leaf, NID_authority_key_identifier), "");
  // Backdated by five minutes; a year long.
  auto now = clock_.Now();
  EXPECT_LE(leaf->NotBefore(), now - std::chrono::minutes(4));
  EXPECT_GE(leaf->NotAfter(), now + std::chrono::hours(24 * 364));
}

TEST_F(AuthorityTest, Issues_WithEveryCaKeyAlgorithm) {
  for (KeyAlgorithm algorithm : {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384,
                                 KeyAlgorithm::kRsa3072, KeyAlgorithm::kEd25519}) {
    SCOPED_TRACE(keys::KeyAlgorithmName(algorithm));
    auto authority = testing::MakeTestCa(clock_, random_, options_, algorithm);
    ASSERT_TRUE(authority.has_value()) << authority.error().message();
    auto subject_key = SubjectKey(algorithm);
    auto leaf =
        (*authority)
            ->Issue(kDeviceClientProfile, {.common_name = "dev", .public_key = subject_key.get()});
    ASSERT_TRUE(leaf.has_value()) << leaf.error().message();
    EXPECT_EQ(OpensslVerify(**authority, *leaf, "sslclient"), "");
    EXPECT_TRUE((*authority)->Verify(*leaf).has_value());
  }
}

TEST_F(AuthorityTest, Issues_ServerAndOcspSignerCertificates) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority.has_value());
  auto subject_key = SubjectKey();
  auto server = (*authority)
                    ->Issue(kServerProfile, {.dns_names = {"devid.example.com"},
                                             .ip_addresses = {"127.0.0.1", "::1"},
                                             .public_key = subject_key.get()});
  ASSERT_TRUE(server.has_value()) << server.error().message();
  EXPECT_EQ(OpensslVerify(**authority, *server, "sslserver"), "");
  EXPECT_TRUE((*authority)->Verify(*server, X509_PURPOSE_SSL_SERVER).has_value());
  EXPECT_NE(ExtensionText(*server, NID_subject_alt_name).find("DNS:devid.example.com"),
            std::string::npos);

  auto ocsp = (*authority)
                  ->Issue(kOcspSignerProfile,
                          {.common_name = "devid OCSP", .public_key = subject_key.get()});
  ASSERT_TRUE(ocsp.has_value()) << ocsp.error().message();
  EXPECT_EQ(OpensslVerify(**authority, *ocsp, "ocsphelper"), "");
  EXPECT_EQ(ExtensionText(*ocsp, NID_ext_key_usage), "OCSP Signing");
  EXPECT_GE(X509_get_ext_by_NID(ocsp->get(), NID_id_pkix_OCSP_noCheck, -1), 0);
}

TEST_F(AuthorityTest, CaCertificates_PassOpensslStrictChecks) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority.has_value());
  const pki::Certificate& issuing = (*authority)->issuers().front().certificate;
  EXPECT_EQ(OpensslVerify(**authority, issuing, "any"), "");
  EXPECT_EQ(ExtensionText(issuing, NID_basic_constraints), "CA:TRUE, pathlen:0");
  EXPECT_EQ(ExtensionText(issuing, NID_key_usage), "Certificate Sign, CRL Sign");
  const pki::Certificate& root = (*authority)->roots().front();
  EXPECT_EQ(OpensslVerify(**authority, root, "any"), "");
  EXPECT_EQ(ExtensionText(root, NID_basic_constraints), "CA:TRUE");
}

TEST_F(AuthorityTest, Rollover_NewestIssues_OldCertificatesStillVerify) {
  auto make_key = [](KeyAlgorithm algorithm, const char* name) {
    auto pkey = keys::GenerateSoftwareKey(algorithm);
    return std::move(*keys::SoftwareKey(std::move(*pkey), name));
  };
  std::unique_ptr<keys::Key> root_key = make_key(KeyAlgorithm::kEcdsaP256, "test:root");
  std::unique_ptr<keys::Key> old_key = make_key(KeyAlgorithm::kEcdsaP256, "test:old");
  std::unique_ptr<keys::Key> new_key = make_key(KeyAlgorithm::kEcdsaP384, "test:new");
  const Profile* root_profile = *FindProfile(kRootCaProfile);
  const Profile* issuing_profile = *FindProfile(kIntermediateCaProfile);
  const Profile* device_profile = *FindProfile(kDeviceClientProfile);
  auto root =
      IssueCertificate(*root_profile, {.common_name = "Root", .public_key = root_key->public_key()},
                       nullptr, *root_key, options_, clock_, random_);
  ASSERT_TRUE(root.has_value());
  auto old_ca = IssueCertificate(*issuing_profile,
                                 {.common_name = "Issuing 1", .public_key = old_key->public_key()},
                                 &*root, *root_key, options_, clock_, random_);
  auto new_ca = IssueCertificate(*issuing_profile,
                                 {.common_name = "Issuing 2", .public_key = new_key->public_key()},
                                 &*root, *root_key, options_, clock_, random_);
  ASSERT_TRUE(old_ca.has_value() && new_ca.has_value());
  auto subject_key = SubjectKey();
  auto old_leaf =
      IssueCertificate(*device_profile, {.common_name = "old", .public_key = subject_key.get()},
                       &*old_ca, *old_key, options_, clock_, random_);
  ASSERT_TRUE(old_leaf.has_value());

  std::vector<pki::Certificate> roots;
  roots.push_back(std::move(*root));
  std::vector<IssuingCa> issuers;
  issuers.push_back({std::move(*old_ca), std::move(old_key)});
  issuers.push_back({std::move(*new_ca), std::move(new_key)});
  auto authority =
      Authority::Create(options_, std::move(roots), std::move(issuers), clock_, random_);
  ASSERT_TRUE(authority.has_value()) << authority.error().message();

  auto new_leaf =
      (*authority)
          ->Issue(kDeviceClientProfile, {.common_name = "new", .public_key = subject_key.get()});
  ASSERT_TRUE(new_leaf.has_value());
  EXPECT_EQ(new_leaf->IssuerName(), "CN=Issuing 2");
  for (const pki::Certificate* leaf : {&*old_leaf, &*new_leaf}) {
    EXPECT_TRUE((*authority)->Verify(*leaf, X509_PURPOSE_SSL_CLIENT).has_value());
    EXPECT_EQ(OpensslVerify(**authority, *leaf, "sslclient"), "");
  }
  EXPECT_NE(
      (*authority)->ChainPem(*old_leaf).find((*authority)->issuers().front().certificate.ToPem()),
      std::string::npos);
}

// A request's SubjectPublicKeyInfo copied as is gives the same certificate key as encoding the
// parsed key, for every key type devid certifies.
TEST_F(AuthorityTest, Issues_FromTheRequestsPublicKeyInfo_TheSameKey) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority) << authority.error().message();
  for (const char* kind : {"P-256", "P-384", "RSA-2048", "ED25519"}) {
    auto key = testing::TestKey(kind);
    ASSERT_TRUE(key) << kind;
    auto csr = pki::Csr::FromDer(testing::MakeTestCsrDer({.key = key.get()}));
    ASSERT_TRUE(csr) << kind;
    auto copied = (*authority)->Issue(kDeviceClientProfile,
                                      {.common_name = "device-1",
                                       .public_key = csr->public_key(),
                                       .public_key_info = csr->public_key_info()});
    ASSERT_TRUE(copied) << kind << ": " << copied.error().message();
    auto encoded = (*authority)->Issue(
        kDeviceClientProfile, {.common_name = "device-1", .public_key = csr->public_key()});
    ASSERT_TRUE(encoded) << kind;
    auto spki = [](const pki::Certificate& c) {
      unsigned char* der = nullptr;
      int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c.get()), &der);
      std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
      OPENSSL_free(der);
      return out;
    };
    EXPECT_EQ(spki(*copied), spki(*encoded)) << kind;
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(copied->get()), key.get()), 1) << kind;
    EXPECT_TRUE((*authority)->Verify(*copied, X509_PURPOSE_SSL_CLIENT)) << kind;
    // Parsed back from DER, the key is the same too (nothing cached hides a difference).
    auto reparsed = pki::Certificate::FromDer(copied->ToDer());
    ASSERT_TRUE(reparsed);
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(reparsed->get()), key.get()), 1) << kind;
  }
}

TEST_F(AuthorityTest, IssuesUnparsed_ACompleteCertificate_ThatOpensslVerifies) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority) << authority.error().message();
  for (const char* kind : {"P-256", "RSA-2048", "ED25519"}) {
    auto key = testing::TestKey(kind);
    ASSERT_TRUE(key) << kind;
    auto csr = pki::Csr::FromDer(testing::MakeTestCsrDer({.key = key.get()}));
    ASSERT_TRUE(csr) << kind;
    auto issued = (*authority)->IssueUnparsed(kDeviceClientProfile,
                                              {.common_name = "device-1",
                                               .public_key = csr->public_key(),
                                               .public_key_info = csr->public_key_info()});
    ASSERT_TRUE(issued) << kind << ": " << issued.error().message();
    // What the object says is what its DER says, the thumbprints and key IDs included.
    auto parsed = pki::Certificate::FromDer(issued->ToDer());
    ASSERT_TRUE(parsed) << kind << ": " << parsed.error().message();
    EXPECT_EQ(issued->Sha1Thumbprint(), parsed->Sha1Thumbprint()) << kind;
    EXPECT_EQ(issued->Sha256Thumbprint(), parsed->Sha256Thumbprint()) << kind;
    EXPECT_EQ(issued->SerialHex(), parsed->SerialHex()) << kind;
    EXPECT_EQ(issued->SubjectName(), "CN=device-1") << kind;
    EXPECT_EQ(AuthorityKeyIdHex(*issued), KeyIdHex((*authority)->issuers().back().certificate));
    EXPECT_EQ(KeyIdHex(*issued), KeyIdHex(*parsed)) << kind;
    EXPECT_EQ((*authority)->IssuerOf(*issued), &(*authority)->issuers().back().certificate);
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(parsed->get()), key.get()), 1) << kind;
    EXPECT_EQ(OpensslVerify(**authority, *parsed, "sslclient"), "") << kind;
  }
}

TEST_F(AuthorityTest, Rejects_WeakOrIncompleteRequests) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority.has_value());
  ossl::UniquePtr<EVP_PKEY> rsa1024(EVP_RSA_gen(1024));
  ossl::UniquePtr<EVP_PKEY> p192(EVP_EC_gen("P-192"));
  ASSERT_TRUE(rsa1024 && p192);
  auto subject_key = SubjectKey();
  struct Case {
    std::string_view profile;
    CertificateRequest request;
    std::string message;
  };
  std::vector<Case> cases = {
      {kDeviceClientProfile, {.common_name = "d", .public_key = rsa1024.get()}, "RSA key of 1024"},
      {kDeviceClientProfile, {.common_name = "d", .public_key = p192.get()}, "curve"},
      {kDeviceClientProfile, {.public_key = subject_key.get()}, "common name"},
      {kDeviceClientProfile,
       {.common_name = std::string(65, 'a'), .public_key = subject_key.get()},
       "64"},
      {kServerProfile, {.common_name = "s", .public_key = subject_key.get()}, "DNS name or IP"},
      {kServerProfile,
       {.ip_addresses = {"not-an-ip"}, .public_key = subject_key.get()},
       "not an IP"},
      {kRootCaProfile, {.common_name = "r", .public_key = subject_key.get()}, "devid ca"},
      {"nonsense", {.common_name = "r", .public_key = subject_key.get()}, "unknown"},
  };
  for (const Case& c : cases) {
    auto issued = (*authority)->Issue(c.profile, c.request);
    ASSERT_FALSE(issued.has_value()) << c.message;
    EXPECT_EQ(issued.error().code(), ErrorCode::kInvalidArgument) << c.message;
    EXPECT_NE(issued.error().message().find(c.message), std::string::npos)
        << issued.error().message();
  }
}

TEST_F(AuthorityTest, Rejects_IssuingKeyThatDoesNotMatchItsCertificate) {
  auto authority = testing::MakeTestCa(clock_, random_, options_);
  ASSERT_TRUE(authority.has_value());
  auto other = keys::GenerateSoftwareKey(KeyAlgorithm::kEcdsaP256);
  std::vector<pki::Certificate> roots;
  roots.push_back((*authority)->roots().front().Clone());
  std::vector<IssuingCa> issuers;
  issuers.push_back({(*authority)->issuers().front().certificate.Clone(),
                     std::move(*keys::SoftwareKey(std::move(*other), "test:other"))});
  auto mismatched =
      Authority::Create(options_, std::move(roots), std::move(issuers), clock_, random_);
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_NE(mismatched.error().message().find("does not match"), std::string::npos);
}

TEST_F(AuthorityTest, Issues_WithCaKeysInSoftHsm) {
  keys::testing::SoftHsmToken token;
  ASSERT_TRUE(token.ok()) << token.init_output();
  keys::Pkcs11KeyStore store(DEVID_SOFTHSM2_MODULE);
  auto uri = [&](const char* object) {
    return *keys::ParseKeyUri(std::string("pkcs11:token=") + token.kLabel + ";object=" + object +
                              "?pin-source=" + token.pin_file());
  };
  auto root_key = store.Create(uri("root"), KeyAlgorithm::kEcdsaP256);
  auto issuing_key = store.Create(uri("issuing"), KeyAlgorithm::kEcdsaP384);
  ASSERT_TRUE(root_key.has_value() && issuing_key.has_value());
  auto authority = testing::MakeTestCa(clock_, random_, options_, KeyAlgorithm::kEcdsaP256,
                                       std::move(*root_key), std::move(*issuing_key));
  ASSERT_TRUE(authority.has_value()) << authority.error().message();
  auto subject_key = SubjectKey();
  auto leaf = (*authority)
                  ->Issue(kDeviceClientProfile,
                          {.common_name = "hsm-device", .public_key = subject_key.get()});
  ASSERT_TRUE(leaf.has_value()) << leaf.error().message();
  EXPECT_EQ(OpensslVerify(**authority, *leaf, "sslclient"), "");
  EXPECT_TRUE((*authority)->Verify(*leaf, X509_PURPOSE_SSL_CLIENT).has_value());
}

}  // namespace
}  // namespace devid::ca
