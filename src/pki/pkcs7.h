#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"

namespace devid::pki {

// CertsOnlyPkcs7Der returns a degenerate ("certs-only") CMS SignedData holding certificates and no
// signers (RFC 5652 §5, RFC 8551 §3.2.2), DER-encoded: what EST returns from /cacerts and
// /simpleenroll (RFC 7030 §4.1.3, §4.2.3). Fails with kInternal when OpenSSL cannot encode.
Result<std::string> CertsOnlyPkcs7Der(const std::vector<const Certificate*>& certificates);

// CertificatesFromPkcs7Der parses a certs-only SignedData and returns its certificates in order.
// Fails with kInvalidArgument when der is not a SignedData.
Result<std::vector<Certificate>> CertificatesFromPkcs7Der(std::string_view der);

}  // namespace devid::pki
