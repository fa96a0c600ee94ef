#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/result.h"
#include "pki/certificate.h"

namespace devid::attestation {

// ParsedCertificate is a certificate decoded once, with its SHA-256 thumbprint
// (pki::Certificate::Sha256Thumbprint).
struct ParsedCertificate {
  pki::Certificate certificate;
  std::string sha256_thumbprint;
};

// ParsedCertificateCache keeps the certificates of enrollments and CA records decoded, by their
// exact encoding, so that an X.509 request does not decode its trust anchors again: OpenSSL 3
// decodes each public key through its provider machinery, the largest cost of a request after
// the handshake. Keyed by content, it cannot answer a stale certificate: a changed enrollment or
// CA has other bytes, and the records themselves are still read at every request. Past capacity
// entries it forgets everything. Thread-safe.
class ParsedCertificateCache {
 public:
  explicit ParsedCertificateCache(size_t capacity = 4096) : capacity_(capacity) {}

  // FromPem returns the first certificate in pem, decoding it on first use. Fails as
  // pki::Certificate::FromPem; failures are not cached. The result is shared and immutable.
  Result<std::shared_ptr<const ParsedCertificate>> FromPem(const std::string& pem) {
    return Get(pem, /*is_pem=*/true);
  }
  // FromDer is FromPem for one DER certificate (pki::Certificate::FromDer).
  Result<std::shared_ptr<const ParsedCertificate>> FromDer(const std::string& der) {
    return Get(der, /*is_pem=*/false);
  }

 private:
  Result<std::shared_ptr<const ParsedCertificate>> Get(const std::string& encoded, bool is_pem);

  const size_t capacity_;
  std::mutex mutex_;
  // Keys are the encoding prefixed with 'P' (PEM) or 'D' (DER).
  std::unordered_map<std::string, std::shared_ptr<const ParsedCertificate>> parsed_;
};

}  // namespace devid::attestation
