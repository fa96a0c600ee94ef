#include "pki/signature_algorithm.h"

#include <openssl/objects.h>

#include "ossl/error.h"

namespace devid::pki {

Status SetSignatureAlgorithm(X509_ALGOR* algorithm, keys::KeyAlgorithm key_algorithm) {
  // Parameters are absent for ECDSA (RFC 5758 §3.2) and Ed25519 (RFC 8410 §3) and NULL for RSA
  // PKCS #1 v1.5 (RFC 4055 §5).
  int nid = keys::SignatureNid(key_algorithm);
  int parameter_type = key_algorithm == keys::KeyAlgorithm::kRsa3072 ? V_ASN1_NULL : V_ASN1_UNDEF;
  if (X509_ALGOR_set0(algorithm, OBJ_nid2obj(nid), parameter_type, nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting the signature algorithm"));
  }
  return Ok();
}

}  // namespace devid::pki
