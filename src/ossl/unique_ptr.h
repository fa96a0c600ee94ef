#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace devid::ossl {

// DeleterImpl<T>::Free releases one OpenSSL object; specialized per type below.
template <typename T>
struct DeleterImpl;

// Deleter frees an OpenSSL handle with the type's own free function.
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    DeleterImpl<T>::Free(p);
  }
};

// UniquePtr owns an OpenSSL handle. Wrap on the line that acquires (_new, get1, d2i_, _dup).
template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter>;

#define DEVID_OSSL_DELETER(T, fn) \
  template <>                     \
  struct DeleterImpl<T> {         \
    static void Free(T* p) { fn(p); } \
  };

DEVID_OSSL_DELETER(BIO, BIO_free_all)
DEVID_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free)
DEVID_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
DEVID_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free)
DEVID_OSSL_DELETER(EVP_MAC, EVP_MAC_free)
DEVID_OSSL_DELETER(EVP_MAC_CTX, EVP_MAC_CTX_free)
DEVID_OSSL_DELETER(X509, X509_free)
DEVID_OSSL_DELETER(X509_NAME, X509_NAME_free)
DEVID_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free)
DEVID_OSSL_DELETER(ASN1_INTEGER, ASN1_INTEGER_free)
DEVID_OSSL_DELETER(BIGNUM, BN_free)
DEVID_OSSL_DELETER(SSL_CTX, SSL_CTX_free)

#undef DEVID_OSSL_DELETER

}  // namespace devid::ossl
