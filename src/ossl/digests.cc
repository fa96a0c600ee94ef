#include "ossl/digests.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace devid::ossl {
namespace {

// Fetch fetches name for the life of the process.
const EVP_MD* Fetch(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) {
    std::fprintf(stderr, "devid: OpenSSL has no %s\n", name);
    std::abort();
  }
  return md;
}

}  // namespace

const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = Fetch("SHA2-256");
  return md;
}

const EVP_MD* Sha1Md() {
  static const EVP_MD* const md = Fetch("SHA1");
  return md;
}

}  // namespace devid::ossl
