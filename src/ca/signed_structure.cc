#include "ca/signed_structure.h"

#include "ca/der.h"
#include "ossl/error.h"
#include "ossl/unique_ptr.h"
#include "pki/signature_algorithm.h"

namespace devid::ca {

Result<std::string> SignatureAlgorithmDer(keys::KeyAlgorithm key_algorithm) {
  ossl::UniquePtr<X509_ALGOR> algorithm(X509_ALGOR_new());
  if (!algorithm) return std::unexpected(ossl::ErrorFromQueue("encoding the signature algorithm"));
  DEVID_TRY(pki::SetSignatureAlgorithm(algorithm.get(), key_algorithm));
  return der::Encode(i2d_X509_ALGOR, static_cast<const X509_ALGOR*>(algorithm.get()),
                     "the signature algorithm");
}

Result<std::string> SignStructure(std::string_view tbs_der, const keys::Key& key,
                                  std::string_view trailing) {
  DEVID_ASSIGN_OR_RETURN(
      std::vector<uint8_t> signature,
      key.Sign({reinterpret_cast<const uint8_t*>(tbs_der.data()), tbs_der.size()}));
  DEVID_ASSIGN_OR_RETURN(std::string algorithm, SignatureAlgorithmDer(key.algorithm()));
  // The BIT STRING's first content octet counts unused bits: none.
  std::string bits(1, '\0');
  bits.append(reinterpret_cast<const char*>(signature.data()), signature.size());
  std::string body(tbs_der);
  body += algorithm;
  body += der::Tlv(V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, false, bits);
  body += trailing;
  return der::Sequence(body);
}

}  // namespace devid::ca
