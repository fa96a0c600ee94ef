#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace devid::registry {

// CaCertificate is a root or intermediate CA certificate an operator uploaded so enrollment groups
// can name it (`attestation.x509.caReferences`). It backs a group only once verified: the
// operator proved possession of its private key by signing a certificate whose subject CN is a
// one-time verification code the service generated (DPS "proof of possession").
struct CaCertificate {
  std::string name;               // the key groups refer to
  std::string der;                // the certificate (binary DER)
  std::string sha256_thumbprint;  // uppercase hex of SHA-256(DER)
  std::string subject;            // RFC 2253 one-line
  bool verified = false;
  // verification_code_hash is the lowercase hex SHA-256 of the pending verification code ("" when
  // none is pending); the code itself is never stored. It answers once, before
  // verification_code_expires.
  std::string verification_code_hash;
  std::chrono::system_clock::time_point verification_code_expires;
  std::string etag;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
};

// Audit actions the CA certificate store writes (object = the CA certificate's name).
inline constexpr std::string_view kAuditCaCertificateCreate = "caCertificate.create";
inline constexpr std::string_view kAuditCaCertificateUpdate = "caCertificate.update";
inline constexpr std::string_view kAuditCaCertificateDelete = "caCertificate.delete";
inline constexpr std::string_view kAuditCaCertificateCode = "caCertificate.verificationCode";
inline constexpr std::string_view kAuditCaCertificateVerify = "caCertificate.verify";

}  // namespace devid::registry
