#include "pki/x5t.h"

#include <openssl/crypto.h>

#include "ossl/base64.h"
#include "ossl/mac.h"

namespace devid::pki {

std::string X5tS256(const Certificate& certificate) {
  std::string der = certificate.ToDer();
  return ossl::Base64UrlEncode(ossl::Sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(der.data()), der.size())));
}

std::string X5tS256FromThumbprint(std::string_view sha256_hex) {
  long length = 0;
  // OPENSSL_hexstr2buf takes pairs of hex digits (colons between them allowed, as none here are).
  std::string hex(sha256_hex);
  unsigned char* bytes = OPENSSL_hexstr2buf(hex.c_str(), &length);
  if (bytes == nullptr) return "";
  std::string encoded =
      length == 32 ? ossl::Base64UrlEncode(std::span<const uint8_t>(bytes, 32)) : std::string();
  OPENSSL_free(bytes);
  return encoded;
}

}  // namespace devid::pki
