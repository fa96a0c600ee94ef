#pragma once

#include <openssl/x509.h>

#include "base/result.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// SignCertificate signs a fully populated certificate through key (any KeyStore back end: the
// private key never enters this process for PKCS #11 keys) and returns the finished certificate.
// It sets the TBSCertificate's signature AlgorithmIdentifier from key's algorithm (RFC 5280
// §4.1.2.3), has key sign the DER TBSCertificate, and assembles Certificate ::= SEQUENCE {
// tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280 §4.1). unsigned_certificate is
// modified (its signature algorithm) but stays owned by the caller. Fails with the key's error, or
// kInternal when OpenSSL cannot encode.
Result<pki::Certificate> SignCertificate(X509* unsigned_certificate, const keys::Key& key);

}  // namespace devid::ca
