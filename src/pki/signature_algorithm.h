#pragma once

#include <openssl/x509.h>

#include "base/result.h"
#include "keys/key_store.h"

namespace devid::pki {

// SetSignatureAlgorithm fills algorithm with the AlgorithmIdentifier of the signatures key
// algorithm's Key::Sign makes, as certificates, CRLs, OCSP responses and certification requests
// carry it. algorithm stays owned by the caller. Fails with kInternal when OpenSSL cannot.
Status SetSignatureAlgorithm(X509_ALGOR* algorithm, keys::KeyAlgorithm key_algorithm);

}  // namespace devid::pki
