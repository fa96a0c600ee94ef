#include "ca/certificate_signer.h"

#include <string>

#include "ca/signed_structure.h"
#include "ossl/error.h"

namespace devid::ca {

Result<pki::Certificate> SignCertificate(X509* certificate, const keys::Key& key) {
  // OpenSSL 3.0 has no setter for the TBSCertificate's signature field (X509_REQ has one); the
  // object is ours and i2d_re_X509_tbs below re-encodes it, so writing through the get0 is safe.
  DEVID_TRY(SetSignatureAlgorithm(const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(certificate)),
                                  key.algorithm()));
  unsigned char* tbs = nullptr;
  int tbs_len = i2d_re_X509_tbs(certificate, &tbs);
  if (tbs_len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding the TBSCertificate"));
  std::string body(reinterpret_cast<const char*>(tbs), static_cast<size_t>(tbs_len));
  OPENSSL_free(tbs);
  auto der = SignStructure(body, key);
  if (!der) return std::unexpected(der.error().WithContext("signing a certificate"));
  return pki::Certificate::FromDer(*der);
}

}  // namespace devid::ca
