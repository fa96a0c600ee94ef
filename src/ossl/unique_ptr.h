#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
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
DEVID_OSSL_DELETER(X509_ALGOR, X509_ALGOR_free)
DEVID_OSSL_DELETER(X509_REQ, X509_REQ_free)
DEVID_OSSL_DELETER(X509_STORE, X509_STORE_free)
DEVID_OSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free)
DEVID_OSSL_DELETER(PKCS7, PKCS7_free)
DEVID_OSSL_DELETER(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
DEVID_OSSL_DELETER(BN_CTX, BN_CTX_free)
DEVID_OSSL_DELETER(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
DEVID_OSSL_DELETER(OSSL_PARAM, OSSL_PARAM_free)
DEVID_OSSL_DELETER(ECDSA_SIG, ECDSA_SIG_free)

#undef DEVID_OSSL_DELETER

}  // namespace devid::ossl
