#pragma once

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ossl/unique_ptr.h"

// UniquePtr deleters for the CRL and OCSP types, apart from unique_ptr.h so that only their users
// pull in <openssl/ocsp.h>.
namespace devid::ossl {

template <>
struct DeleterImpl<AUTHORITY_KEYID> {
  static void Free(AUTHORITY_KEYID* p) { AUTHORITY_KEYID_free(p); }
};
template <>
struct DeleterImpl<X509_CRL> {
  static void Free(X509_CRL* p) { X509_CRL_free(p); }
};
template <>
struct DeleterImpl<OCSP_REQUEST> {
  static void Free(OCSP_REQUEST* p) { OCSP_REQUEST_free(p); }
};
template <>
struct DeleterImpl<OCSP_CERTID> {
  static void Free(OCSP_CERTID* p) { OCSP_CERTID_free(p); }
};
template <>
struct DeleterImpl<OCSP_RESPONSE> {
  static void Free(OCSP_RESPONSE* p) { OCSP_RESPONSE_free(p); }
};
template <>
struct DeleterImpl<OCSP_BASICRESP> {
  static void Free(OCSP_BASICRESP* p) { OCSP_BASICRESP_free(p); }
};

}  // namespace devid::ossl
