#include "pki/x5t.h"

#include "ossl/base64.h"
#include "ossl/mac.h"

namespace devid::pki {

std::string X5tS256(const Certificate& certificate) {
  std::string der = certificate.ToDer();
  return ossl::Base64UrlEncode(ossl::Sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(der.data()), der.size())));
}

}  // namespace devid::pki
