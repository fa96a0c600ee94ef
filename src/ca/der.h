#pragma once

#include <openssl/asn1.h>
#include <openssl/crypto.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "ossl/error.h"

namespace devid::ca::der {

// Tlv returns one DER element: the identifier octets for tag in tag_class (V_ASN1_UNIVERSAL,
// V_ASN1_CONTEXT_SPECIFIC), primitive or constructed, the definite length and content. devid
// assembles the few structures OpenSSL cannot sign through an external key (TBSCertList,
// BasicOCSPResponse) from pieces OpenSSL encodes, joined by this.
std::string Tlv(int tag, int tag_class, bool constructed, std::string_view content);

// Sequence returns SEQUENCE { content }.
inline std::string Sequence(std::string_view content) {
  return Tlv(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, content);
}

// Explicit returns [tag] EXPLICIT content (context-specific, constructed).
inline std::string Explicit(int tag, std::string_view content) {
  return Tlv(tag, V_ASN1_CONTEXT_SPECIFIC, true, content);
}

// Encode runs an OpenSSL i2d function on object and returns the DER; what names the object in
// the error (kInternal) when OpenSSL cannot encode it.
template <typename T>
Result<std::string> Encode(int (*i2d)(const T*, unsigned char**), const T* object,
                           std::string_view what) {
  unsigned char* out = nullptr;
  int length = i2d(object, &out);
  if (length <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding " + std::string(what)));
  std::string der(reinterpret_cast<const char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
  return der;
}

}  // namespace devid::ca::der
