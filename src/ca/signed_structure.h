#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "keys/key_store.h"

namespace devid::ca {

// SignatureAlgorithmDer returns the AlgorithmIdentifier of the signatures key_algorithm's Key::Sign
// makes (pki::SetSignatureAlgorithm) as DER.
Result<std::string> SignatureAlgorithmDer(keys::KeyAlgorithm key_algorithm);

// SignStructure has key sign tbs_der (a TBSCertificate, TBSCertList or OCSP ResponseData, whose
// own signature field, where it has one, must already name key's algorithm) and returns the
// DER of the signed structure all three share:
//   SEQUENCE { tbs, signatureAlgorithm AlgorithmIdentifier, signature BIT STRING, trailing }
// (RFC 5280 §4.1 and §5.1, RFC 6960 §4.2.1). trailing is appended as is: the BasicOCSPResponse's
// `certs [0] EXPLICIT` field, or "" for certificates and CRLs. The private key never leaves key's
// store. Fails with the key's error, or kInternal when OpenSSL cannot encode.
Result<std::string> SignStructure(std::string_view tbs_der, const keys::Key& key,
                                  std::string_view trailing = {});

}  // namespace devid::ca
