#include "ca/certificate_signer.h"

#include <string>

#include "ca/der.h"
#include "ca/signed_structure.h"
#include "ossl/error.h"
#include "pki/signature_algorithm.h"

namespace devid::ca {

Status SignCertificateInPlace(X509* certificate, const keys::Key& key) {
  // OpenSSL 3.0 has no setters for the TBSCertificate's signature field or the outer signature
  // (X509_REQ has them); the object is ours and i2d re-encodes it, so writing through the get0s
  // is safe.
  DEVID_TRY(pki::SetSignatureAlgorithm(const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(certificate)),
                                       key.algorithm()));
  unsigned char* tbs = nullptr;
  int tbs_length = i2d_re_X509_tbs(certificate, &tbs);
  if (tbs_length <= 0) {
    return std::unexpected(ossl::ErrorFromQueue("encoding the TBSCertificate"));
  }
  auto signature = key.Sign({tbs, static_cast<size_t>(tbs_length)});
  OPENSSL_free(tbs);
  if (!signature) return std::unexpected(signature.error().WithContext("signing a certificate"));
  const ASN1_BIT_STRING* value = nullptr;
  const X509_ALGOR* algorithm = nullptr;
  X509_get0_signature(&value, &algorithm, certificate);
  DEVID_TRY(pki::SetSignatureAlgorithm(const_cast<X509_ALGOR*>(algorithm), key.algorithm()));
  auto* bits = const_cast<ASN1_BIT_STRING*>(value);
  if (ASN1_BIT_STRING_set(bits, signature->data(), static_cast<int>(signature->size())) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting a certificate's signature"));
  }
  // Whole octets: no unused bits (what X509_sign leaves, RFC 5280 §4.1.1.3).
  bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
  bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
  return Ok();
}

Result<pki::Certificate> SignCertificate(X509* certificate, const keys::Key& key) {
  DEVID_TRY(SignCertificateInPlace(certificate, key));
  DEVID_ASSIGN_OR_RETURN(std::string der,
                         der::Encode(i2d_X509, static_cast<const X509*>(certificate),
                                     "a signed certificate"));
  return pki::Certificate::FromDer(der);
}

}  // namespace devid::ca
