#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace devid::registry {

// CertificateSource says how devid came to know a certificate.
enum class CertificateSource {
  kIssued,    // devid's CA signed it (EST, registration with a CSR, the server's TLS certificate)
  kObserved,  // a peer presented it at authentication (a manufacturer's device certificate, ...)
};

// CertificateRecord is one certificate of the inventory (discovery): everything an operator
// needs to find it and act on it without parsing DER. A certificate is identified by its SHA-256
// thumbprint; (issuer, serial) is unique too, as RFC 5280 §4.1.2.2 requires of an issuer.
struct CertificateRecord {
  std::string sha256_thumbprint;  // uppercase hex of SHA-256(DER), as Azure shows thumbprints
  std::string sha1_thumbprint;    // uppercase hex of SHA-1(DER)
  std::string serial;             // uppercase hex of the serial number (pki::Certificate::SerialHex)
  std::string subject;            // RFC 2253 one-line
  std::string issuer;             // RFC 2253 one-line
  // issuer_key_id is the authorityKeyIdentifier (lowercase hex, ca::KeyIdHex of the issuing CA):
  // the CRL a revoked certificate goes on. "" when the certificate has none.
  std::string issuer_key_id;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  std::string device_id;  // the registration ID it belongs to; "" when not a device's
  std::string profile;    // the issuing profile ("device-client", "server", ...); "" if observed
  CertificateSource source = CertificateSource::kIssued;
  std::string der;  // the certificate itself (binary DER)
  // Revocation (RFC 5280 §5.3.1 reason codes). Only issued certificates are revoked by devid.
  bool revoked = false;
  int revocation_reason = 0;  // CRLReason; 0 = unspecified
  std::chrono::system_clock::time_point revoked_at;
  // first_seen is when the record was made; last_seen the latest authentication that presented
  // the certificate (observed ones; equal to first_seen for issued ones never presented).
  std::chrono::system_clock::time_point first_seen;
  std::chrono::system_clock::time_point last_seen;
};

// CertificateFilter selects inventory records; every set field must match. An empty filter
// selects everything.
struct CertificateFilter {
  std::optional<std::string> sha256_thumbprint;  // either thumbprint, uppercase hex
  std::optional<std::string> sha1_thumbprint;
  std::optional<std::string> serial;         // uppercase hex
  std::optional<std::string> issuer_key_id;  // lowercase hex
  std::optional<std::string> device_id;
  std::optional<CertificateSource> source;
  std::optional<bool> revoked;
  // expiring_before selects certificates whose not_after is earlier (`devid cert list --expiring`).
  std::optional<std::chrono::system_clock::time_point> expiring_before;

  bool operator==(const CertificateFilter&) const = default;
};

// Audit actions the inventory writes.
inline constexpr std::string_view kAuditCertificateIssue = "certificate.issue";
inline constexpr std::string_view kAuditCertificateRenew = "certificate.renew";
inline constexpr std::string_view kAuditCertificateRevoke = "certificate.revoke";

}  // namespace devid::registry
