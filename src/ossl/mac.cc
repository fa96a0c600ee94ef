#include "ossl/mac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

#include "ossl/digests.h"

namespace devid::ossl {

Sha256Digest HmacSha256(std::span<const uint8_t> key, std::string_view message) {
  Sha256Digest out{};
  unsigned int len = 0;
  // HMAC() with EVP_sha256 is OpenSSL's one-shot path; it avoids the EVP_MAC fetch per call.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    std::fputs("devid: HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  return out;
}

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest out{};
  if (EVP_Digest(data.data(), data.size(), out.data(), nullptr, Sha256Md(), nullptr) != 1) {
    std::fputs("devid: SHA-256 failed\n", stderr);
    std::abort();
  }
  return out;
}

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace devid::ossl
