#include "pki/pkcs7.h"

#include <openssl/pkcs7.h>

#include "ossl/error.h"

namespace devid::pki {
Result<std::string> CertsOnlyPkcs7Der(const std::vector<const Certificate*>& certificates) {
  ossl::UniquePtr<PKCS7> p7(PKCS7_new());
  // RFC 8551 §3.2.2: a SignedData with no signerInfos and empty encapsulated content (id-data).
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1 ||
      PKCS7_content_new(p7.get(), NID_pkcs7_data) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building a certs-only PKCS #7"));
  }
  for (const Certificate* certificate : certificates) {
    // PKCS7_add_certificate takes its own reference.
    if (PKCS7_add_certificate(p7.get(), certificate->get()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("adding a certificate to a PKCS #7"));
    }
  }
  unsigned char* der = nullptr;
  int len = i2d_PKCS7(p7.get(), &der);
  if (len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding a certs-only PKCS #7"));
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

Result<std::vector<Certificate>> CertificatesFromPkcs7Der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::UniquePtr<PKCS7> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
  if (!p7 || !PKCS7_type_is_signed(p7.get()) || p7->d.sign == nullptr) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a certs-only PKCS #7", ErrorCode::kInvalidArgument));
  }
  std::vector<Certificate> out;
  STACK_OF(X509)* certs = p7->d.sign->cert;
  for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i) {
    X509* x509 = sk_X509_value(certs, i);
    X509_up_ref(x509);
    out.push_back(Certificate::Adopt(ossl::UniquePtr<X509>(x509)));
  }
  return out;
}

}  // namespace devid::pki
