#include "ca/client_certificate_verifier.h"

#include <openssl/x509v3.h>

#include "ca/inventory.h"
#include "pki/crl_reason.h"

namespace devid::ca {
namespace {

// Describe names a certificate in messages the client sees: serial and subject, never more.
std::string Describe(const pki::Certificate& certificate) {
  return "the TLS client certificate (serial " + certificate.SerialHex() + ", " +
         certificate.SubjectName() + ")";
}

}  // namespace

Status ClientCertificateVerifier::Observe(const pki::Certificate& certificate) {
  // The device is not known until the certificate is verified; the store keeps an issued record's
  // device ID when the certificate is one devid issued.
  return registry_.ObserveCertificate(
      InventoryRecord(certificate, registry::CertificateSource::kObserved, "", ""));
}

Result<AuthenticatedCertificate> ClientCertificateVerifier::Verify(pki::Certificate certificate) {
  // Expiry first, by itself, so the message says plainly why the certificate no longer works
  // (X509_verify_cert would report an unknown issuer before the time).
  auto now = clock_.Now();
  if (now >= certificate.NotAfter()) {
    return std::unexpected(Unauthenticated(Describe(certificate) + " expired at " +
                                           FormatUtc(certificate.NotAfter()) +
                                           "; enroll again with the device's SAS token"));
  }
  if (now + authority_.options().backdate < certificate.NotBefore()) {
    return std::unexpected(Unauthenticated(Describe(certificate) + " is not valid before " +
                                           FormatUtc(certificate.NotBefore())));
  }
  // RFC 5280 §6.1 path validation to devid's roots, for TLS client authentication (the
  // device-client profile's extendedKeyUsage).
  std::string thumbprint = certificate.Sha256Thumbprint();
  if (!verified_paths_.Find(thumbprint, now)) {
    if (auto verified = authority_.Verify(certificate, X509_PURPOSE_SSL_CLIENT); !verified) {
      return std::unexpected(Unauthenticated(Describe(certificate) +
                                             " was not issued by devid's CA for client "
                                             "authentication: " +
                                             verified.error().message()));
    }
    verified_paths_.Remember(thumbprint, true, now, certificate.NotAfter());
  }
  // A certificate that chains but has no issuance record was not issued through devid's
  // enrollment (an operator's `devid ca issue`, a copy of the CA key elsewhere): refuse it, as
  // nothing could revoke it.
  registry::CertificateFilter filter;
  filter.sha256_thumbprint = std::move(thumbprint);
  DEVID_ASSIGN_OR_RETURN(auto page, registry_.QueryCertificates(filter, {.max_items = 1}));
  if (page.items.empty() || page.items.front().source != registry::CertificateSource::kIssued) {
    return std::unexpected(Unauthenticated(Describe(certificate) +
                                           " is not in devid's certificate inventory as one it "
                                           "issued"));
  }
  registry::CertificateRecord record = std::move(page.items.front());
  if (record.revoked) {
    std::string reason(pki::CrlReasonName(record.revocation_reason));
    return std::unexpected(PermissionDenied(Describe(certificate) + " was revoked at " +
                                            FormatUtc(record.revoked_at) +
                                            (reason.empty() ? "" : " (" + reason + ")")));
  }
  std::string registration_id = certificate.SubjectCommonName();
  if (registration_id.empty()) {
    return std::unexpected(Unauthenticated(Describe(certificate) + " has no subject CN"));
  }
  return AuthenticatedCertificate{std::move(certificate), std::move(record),
                                  std::move(registration_id)};
}

}  // namespace devid::ca
