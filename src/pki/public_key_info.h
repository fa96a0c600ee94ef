#pragma once

#include <openssl/x509.h>

#include <span>

#include "base/result.h"

namespace devid::pki {

// SetPublicKeyInfo sets to's algorithm and key bits to copies of algorithm and bits, without
// decoding the key: OpenSSL 3.0 turns an EVP_PKEY into a SubjectPublicKeyInfo and back through
// its provider encoders and decoders, which costs about a hundred times more than the copy. The
// key is then present only as encoded (X509_PUBKEY_get0 answers null). Fails with kInternal.
Status SetPublicKeyInfo(const X509_ALGOR* algorithm, std::span<const unsigned char> bits,
                        X509_PUBKEY* to);

// CopyPublicKeyInfo copies from's algorithm and key bits into to the same way.
Status CopyPublicKeyInfo(const X509_PUBKEY* from, X509_PUBKEY* to);

}  // namespace devid::pki
