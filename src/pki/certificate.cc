#include "pki/certificate.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "base/hex.h"
#include "ossl/digests.h"
#include "ossl/error.h"
#include "ossl/mac.h"

namespace devid::pki {
namespace {

std::string NameToString(const X509_NAME* name) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len > 0 ? len : 0));
}

std::chrono::system_clock::time_point AsnTimeToTimePoint(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509> x509(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!x509) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a PEM certificate", ErrorCode::kInvalidArgument));
  }
  return Certificate(std::move(x509));
}

Result<Certificate> Certificate::FromDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* start = p;
  ossl::UniquePtr<X509> x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x509) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a DER certificate", ErrorCode::kInvalidArgument));
  }
  if (static_cast<size_t>(p - start) != der.size()) {
    return std::unexpected(InvalidArgument("parsing a DER certificate: trailing bytes"));
  }
  return Certificate(std::move(x509));
}

Result<std::vector<Certificate>> Certificate::AllFromPem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected(ossl::ErrorFromQueue("reading a PEM bundle"));
  std::vector<Certificate> out;
  while (true) {
    ossl::UniquePtr<X509> x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x509) break;
    out.push_back(Certificate(std::move(x509)));
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (out.empty()) return std::unexpected(InvalidArgument("the PEM bundle holds no certificate"));
  return out;
}

Certificate Certificate::Clone() const {
  X509_up_ref(x509_.get());
  return Certificate(ossl::UniquePtr<X509>(x509_.get()));
}

std::string Certificate::ToPem() const {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x509_.get()) != 1) return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string Certificate::ToDer() const {
  int len = i2d_X509(x509_.get(), nullptr);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(x509_.get(), &p);
  return out;
}

std::string Certificate::SubjectCommonName() const {
  const X509_NAME* name = X509_get_subject_name(x509_.get());
  int index = -1;
  int last = -1;
  while ((index = X509_NAME_get_index_by_NID(name, NID_commonName, index)) >= 0) last = index;
  if (last < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string Certificate::SubjectName() const {
  return NameToString(X509_get_subject_name(x509_.get()));
}

std::string Certificate::IssuerName() const {
  return NameToString(X509_get_issuer_name(x509_.get()));
}

std::string Certificate::SerialHex() const {
  ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509_.get()), nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

std::string Certificate::Sha256Thumbprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(x509_.get(), ossl::Sha256Md(), md, &len);
  return HexEncode(std::span<const uint8_t>(md, len), /*uppercase=*/true);
}

std::string Certificate::Sha1Thumbprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(x509_.get(), ossl::Sha1Md(), md, &len);
  return HexEncode(std::span<const uint8_t>(md, len), /*uppercase=*/true);
}

std::chrono::system_clock::time_point Certificate::NotBefore() const {
  return AsnTimeToTimePoint(X509_get0_notBefore(x509_.get()));
}

std::chrono::system_clock::time_point Certificate::NotAfter() const {
  return AsnTimeToTimePoint(X509_get0_notAfter(x509_.get()));
}

}  // namespace devid::pki
