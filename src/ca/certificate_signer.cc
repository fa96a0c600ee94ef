#include "ca/certificate_signer.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <string>

#include "ossl/error.h"

namespace devid::ca {
namespace {

// SetAlgorithm fills an AlgorithmIdentifier for key's signature scheme. Parameters are absent for
// ECDSA (RFC 5758 §3.2) and Ed25519 (RFC 8410 §3) and NULL for RSA PKCS #1 v1.5 (RFC 4055 §5).
Status SetAlgorithm(X509_ALGOR* algorithm, keys::KeyAlgorithm key_algorithm) {
  int nid = keys::SignatureNid(key_algorithm);
  int parameter_type = key_algorithm == keys::KeyAlgorithm::kRsa3072 ? V_ASN1_NULL : V_ASN1_UNDEF;
  if (X509_ALGOR_set0(algorithm, OBJ_nid2obj(nid), parameter_type, nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting the signature algorithm"));
  }
  return Ok();
}

// AppendHeader appends a DER tag and length for content of content_length bytes.
void AppendHeader(std::string& out, bool constructed, int tag, int content_length) {
  int total = ASN1_object_size(constructed ? 1 : 0, content_length, tag);
  std::string header(static_cast<size_t>(total - content_length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(header.data());
  ASN1_put_object(&p, constructed ? 1 : 0, content_length, tag, V_ASN1_UNIVERSAL);
  out += header;
}

}  // namespace

Result<pki::Certificate> SignCertificate(X509* certificate, const keys::Key& key) {
  // OpenSSL 3.0 has no setter for the TBSCertificate's signature field (X509_REQ has one); the
  // object is ours and i2d_re_X509_tbs below re-encodes it, so writing through the get0 is safe.
  DEVID_TRY(
      SetAlgorithm(const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(certificate)), key.algorithm()));
  unsigned char* tbs = nullptr;
  int tbs_len = i2d_re_X509_tbs(certificate, &tbs);
  if (tbs_len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding the TBSCertificate"));
  std::string body(reinterpret_cast<const char*>(tbs), static_cast<size_t>(tbs_len));
  OPENSSL_free(tbs);

  auto signature = key.Sign({reinterpret_cast<const uint8_t*>(body.data()), body.size()});
  if (!signature) return std::unexpected(signature.error().WithContext("signing a certificate"));

  ossl::UniquePtr<X509_ALGOR> algorithm(X509_ALGOR_new());
  if (!algorithm) return std::unexpected(ossl::ErrorFromQueue("encoding the signature algorithm"));
  DEVID_TRY(SetAlgorithm(algorithm.get(), key.algorithm()));
  unsigned char* algorithm_der = nullptr;
  int algorithm_len = i2d_X509_ALGOR(algorithm.get(), &algorithm_der);
  if (algorithm_len <= 0) {
    return std::unexpected(ossl::ErrorFromQueue("encoding the signature algorithm"));
  }
  body.append(reinterpret_cast<const char*>(algorithm_der), static_cast<size_t>(algorithm_len));
  OPENSSL_free(algorithm_der);
  // signatureValue BIT STRING: a leading 0 (no unused bits) and the signature octets.
  AppendHeader(body, false, V_ASN1_BIT_STRING, static_cast<int>(signature->size() + 1));
  body += '\0';
  body.append(reinterpret_cast<const char*>(signature->data()), signature->size());

  std::string der;
  AppendHeader(der, true, V_ASN1_SEQUENCE, static_cast<int>(body.size()));
  der += body;
  return pki::Certificate::FromDer(der);
}

}  // namespace devid::ca
