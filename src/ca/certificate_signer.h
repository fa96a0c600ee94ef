#pragma once

#include <openssl/x509.h>

#include "base/result.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// SignCertificateInPlace signs a fully populated certificate through key (any KeyStore back end:
// the private key never enters this process for PKCS #11 keys) and completes it where it is: it
// sets the TBSCertificate's signature AlgorithmIdentifier from key's algorithm (RFC 5280
// §4.1.2.3), has key sign the DER TBSCertificate, and sets signatureAlgorithm and signatureValue
// (RFC 5280 §4.1), so that i2d_X509 gives the signed certificate. The certificate stays owned by
// the caller. Its public key is not decoded again: when the caller set it as bytes
// (X509_PUBKEY_set0_param), X509_get0_pubkey keeps returning null. Fails with the key's error, or
// kInternal when OpenSSL cannot encode.
Status SignCertificateInPlace(X509* unsigned_certificate, const keys::Key& key);

// SignCertificate signs as SignCertificateInPlace and returns the finished certificate parsed
// from its DER, so that it is complete in every respect, its decoded public key included.
// unsigned_certificate is modified but stays owned by the caller. Fails as
// SignCertificateInPlace.
Result<pki::Certificate> SignCertificate(X509* unsigned_certificate, const keys::Key& key);

}  // namespace devid::ca
