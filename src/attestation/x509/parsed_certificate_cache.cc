#include "attestation/x509/parsed_certificate_cache.h"

namespace devid::attestation {

Result<std::shared_ptr<const ParsedCertificate>> ParsedCertificateCache::Get(
    const std::string& encoded, bool is_pem) {
  std::string key;
  key.reserve(encoded.size() + 1);
  key += is_pem ? 'P' : 'D';
  key += encoded;
  {
    std::lock_guard lock(mutex_);
    if (auto it = parsed_.find(key); it != parsed_.end()) return it->second;
  }
  // Decoded outside the lock: two threads may both decode a new certificate; one result stays.
  auto certificate =
      is_pem ? pki::Certificate::FromPem(encoded) : pki::Certificate::FromDer(encoded);
  if (!certificate) return std::unexpected(certificate.error());
  std::string thumbprint = certificate->Sha256Thumbprint();
  auto parsed = std::make_shared<const ParsedCertificate>(
      ParsedCertificate{std::move(*certificate), std::move(thumbprint)});
  std::lock_guard lock(mutex_);
  if (parsed_.size() >= capacity_) parsed_.clear();
  return parsed_.try_emplace(std::move(key), std::move(parsed)).first->second;
}

}  // namespace devid::attestation
