#include "ossl/mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "ossl/digests.h"
#include "ossl/unique_ptr.h"

namespace devid::ossl {

namespace {

// Failed ends the process: a digest that cannot be computed leaves no safe answer to give.
[[noreturn]] void Failed(const char* what) {
  std::fprintf(stderr, "devid: %s failed\n", what);
  std::abort();
}

// HmacSha256Template is an HMAC context with SHA-256 set, made once: HMAC() would fetch the MAC
// and its digest by name on every call (EVP_Q_mac), under locks every thread shares.
const EVP_MAC_CTX& HmacSha256Template() {
  static const EVP_MAC_CTX* const ctx = [] {
    UniquePtr<EVP_MAC> mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
    EVP_MAC_CTX* made = mac == nullptr ? nullptr : EVP_MAC_CTX_new(mac.get());  // holds its own ref
    char digest[] = "SHA2-256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (made == nullptr || EVP_MAC_CTX_set_params(made, params) != 1) Failed("HMAC-SHA256");
    return made;
  }();
  return *ctx;
}

}  // namespace

Sha256Digest HmacSha256(std::span<const uint8_t> key, std::string_view message) {
  UniquePtr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_dup(&HmacSha256Template()));
  // A null key would mean "the key set before"; an empty one is a key like any other.
  static const uint8_t kNoByte = 0;
  const uint8_t* key_data = key.empty() ? &kNoByte : key.data();
  Sha256Digest out{};
  size_t len = 0;
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), key_data, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size()) {
    Failed("HMAC-SHA256");
  }
  return out;
}

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest out{};
  if (EVP_Digest(data.data(), data.size(), out.data(), nullptr, Sha256Md(), nullptr) != 1) {
    Failed("SHA-256");
  }
  return out;
}

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace devid::ossl
