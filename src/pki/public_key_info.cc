#include "pki/public_key_info.h"

#include "ossl/error.h"

namespace devid::pki {

Status SetPublicKeyInfo(const X509_ALGOR* algorithm, std::span<const unsigned char> bits,
                        X509_PUBKEY* to) {
  const ASN1_OBJECT* oid = nullptr;
  int parameter_type = V_ASN1_UNDEF;
  const void* parameter = nullptr;
  X509_ALGOR_get0(&oid, &parameter_type, &parameter, algorithm);
  void* parameter_copy = nullptr;
  if (parameter_type == V_ASN1_OBJECT) {
    parameter_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(parameter));
  } else if (parameter != nullptr && parameter_type != V_ASN1_NULL) {
    parameter_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(parameter));
  }
  auto* bits_copy = static_cast<unsigned char*>(OPENSSL_memdup(bits.data(), bits.size()));
  ASN1_OBJECT* oid_copy = OBJ_dup(oid);
  if (bits.empty() || bits_copy == nullptr || oid_copy == nullptr ||
      X509_PUBKEY_set0_param(to, oid_copy, parameter_type, parameter_copy, bits_copy,
                             static_cast<int>(bits.size())) != 1) {
    ASN1_OBJECT_free(oid_copy);
    OPENSSL_free(bits_copy);
    if (parameter_type == V_ASN1_OBJECT) {
      ASN1_OBJECT_free(static_cast<ASN1_OBJECT*>(parameter_copy));
    } else {
      ASN1_STRING_free(static_cast<ASN1_STRING*>(parameter_copy));
    }
    return std::unexpected(ossl::ErrorFromQueue("copying a public key"));
  }
  return Ok();
}

Status CopyPublicKeyInfo(const X509_PUBKEY* from, X509_PUBKEY* to) {
  ASN1_OBJECT* key_type = nullptr;
  const unsigned char* bits = nullptr;
  int bits_length = 0;
  X509_ALGOR* algorithm = nullptr;
  if (X509_PUBKEY_get0_param(&key_type, &bits, &bits_length, &algorithm, from) != 1 ||
      bits_length <= 0) {
    return std::unexpected(ossl::ErrorFromQueue("reading a public key"));
  }
  return SetPublicKeyInfo(algorithm, {bits, static_cast<size_t>(bits_length)}, to);
}

}  // namespace devid::pki
