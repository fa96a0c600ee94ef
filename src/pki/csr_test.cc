#include "pki/csr.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "keys/software/file_key_store.h"
#include "pki/pkcs7.h"

namespace devid::pki {
namespace {

// MakeCsrDer builds a request for CN=cn signed with a fresh P-256 key.
std::string MakeCsrDer(const char* cn) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  EXPECT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

TEST(CsrTest, Parses_AndVerifiesProofOfPossession) {
  auto csr = Csr::FromDer(MakeCsrDer("device-9"));
  ASSERT_TRUE(csr.has_value()) << csr.error().message();
  EXPECT_EQ(csr->SubjectCommonName(), "device-9");
  EXPECT_NE(csr->public_key(), nullptr);
  EXPECT_TRUE(csr->VerifySignature().has_value());
}

TEST(CsrTest, ToPem_CarriesTheExactBytesParsed) {
  std::string der = MakeCsrDer("device-9");
  auto csr = Csr::FromDer(der);
  ASSERT_TRUE(csr.has_value()) << csr.error().message();
  std::string pem = csr->ToPem();
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0), 0u) << pem;
  auto again = Csr::FromPem(pem);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ(again->ToDer(), der);
}

// MakeCsrDer builds a request for CN=cn signed with key.
std::string MakeCsrDer(const char* cn, EVP_PKEY* key) {
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key);
  EXPECT_GT(X509_REQ_sign(req.get(), key, EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string SubjectPublicKeyInfo(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

TEST(CsrTest, Parses_EveryKeyTypeToTheKeyItCarries) {
  // P-256 and P-384 keys are imported from their point, the others decoded by OpenSSL: each
  // comes out as the key that signed, with the request's exact bytes kept.
  for (const char* type : {"P-256", "P-384", "RSA", "ED25519"}) {
    ossl::UniquePtr<EVP_PKEY> key(
        std::string(type) == "RSA"       ? EVP_RSA_gen(2048)
        : std::string(type) == "ED25519" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                         : EVP_EC_gen(type));
    ASSERT_TRUE(key) << type;
    std::string der = std::string(type) == "ED25519" ? "" : MakeCsrDer("device-9", key.get());
    if (der.empty()) {
      ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
      X509_REQ_set_pubkey(req.get(), key.get());
      ASSERT_GT(X509_REQ_sign(req.get(), key.get(), nullptr), 0);
      unsigned char* bytes = nullptr;
      int len = i2d_X509_REQ(req.get(), &bytes);
      der.assign(reinterpret_cast<char*>(bytes), static_cast<size_t>(len));
      OPENSSL_free(bytes);
    }
    auto csr = Csr::FromDer(der);
    ASSERT_TRUE(csr.has_value()) << type << ": " << csr.error().message();
    ASSERT_NE(csr->public_key(), nullptr) << type;
    EXPECT_EQ(EVP_PKEY_eq(csr->public_key(), key.get()), 1) << type;
    EXPECT_TRUE(csr->VerifySignature().has_value()) << type;
    EXPECT_EQ(csr->ToDer(), der) << type;
    unsigned char* info = nullptr;
    int info_len = i2d_X509_PUBKEY(csr->public_key_info(), &info);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(info), static_cast<size_t>(info_len)),
              SubjectPublicKeyInfo(key.get()))
        << type;
    OPENSSL_free(info);
  }
}

TEST(CsrTest, Rejects_PointNotOnTheCurve) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  std::string der = MakeCsrDer("device-9", key.get());
  // The point is the last 64 octets of the SubjectPublicKeyInfo inside the request.
  std::string spki = SubjectPublicKeyInfo(key.get());
  size_t at = der.find(spki);
  ASSERT_NE(at, std::string::npos);
  der[at + spki.size() - 1] ^= 0x01;  // y no longer matches x
  auto csr = Csr::FromDer(der);
  ASSERT_TRUE(csr.has_value()) << csr.error().message();
  EXPECT_EQ(csr->public_key(), nullptr);
  auto verified = csr->VerifySignature();
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code(), ErrorCode::kInvalidArgument);
}

TEST(CsrTest, Rejects_BadSignature) {
  std::string der = MakeCsrDer("device-9");
  der.back() ^= 0x01;
  auto csr = Csr::FromDer(der);
  ASSERT_TRUE(csr.has_value());
  auto verified = csr->VerifySignature();
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code(), ErrorCode::kInvalidArgument);
}

TEST(CsrTest, Rejects_GarbageAndTrailingBytes) {
  EXPECT_FALSE(Csr::FromDer("not a request").has_value());
  EXPECT_FALSE(Csr::FromDer(MakeCsrDer("x") + "!").has_value());
  EXPECT_FALSE(Csr::FromPem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n").has_value());
}

TEST(CsrTest, Sign_ThroughEveryKeyAlgorithm_VerifiesAndKeepsTheSubject) {
  for (keys::KeyAlgorithm algorithm :
       {keys::KeyAlgorithm::kEcdsaP256, keys::KeyAlgorithm::kEcdsaP384,
        keys::KeyAlgorithm::kRsa3072, keys::KeyAlgorithm::kEd25519}) {
    SCOPED_TRACE(keys::KeyAlgorithmName(algorithm));
    auto pkey = keys::GenerateSoftwareKey(algorithm);
    ASSERT_TRUE(pkey.has_value());
    auto key = keys::SoftwareKey(std::move(*pkey), "test:device");
    ASSERT_TRUE(key.has_value());
    ossl::UniquePtr<X509_NAME> subject(X509_NAME_new());
    X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("device-7"), -1, -1, 0);
    auto signed_csr = Csr::Sign(subject.get(), **key);
    ASSERT_TRUE(signed_csr.has_value()) << signed_csr.error().message();
    auto parsed = Csr::FromDer(signed_csr->ToDer());
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_TRUE(parsed->VerifySignature().has_value());
    EXPECT_EQ(parsed->SubjectCommonName(), "device-7");
    EXPECT_EQ(EVP_PKEY_eq(parsed->public_key(), (*key)->public_key()), 1);
    EXPECT_EQ(X509_REQ_get_signature_nid(parsed->get()), keys::SignatureNid(algorithm));
  }
}

TEST(Pkcs7Test, RoundTrips_CertsOnly) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509> x509(X509_new());
  X509_set_version(x509.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(x509.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x509.get()), 3600);
  X509_set_pubkey(x509.get(), key.get());
  ASSERT_GT(X509_sign(x509.get(), key.get(), EVP_sha256()), 0);
  Certificate certificate = Certificate::Adopt(std::move(x509));
  auto der = CertsOnlyPkcs7Der({&certificate, &certificate});
  ASSERT_TRUE(der.has_value());
  auto back = CertificatesFromPkcs7Der(*der);
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].ToDer(), certificate.ToDer());
  EXPECT_FALSE(CertificatesFromPkcs7Der("junk").has_value());
}

}  // namespace
}  // namespace devid::pki
