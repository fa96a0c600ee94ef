#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/expiring_memo.h"
#include "base/result.h"
#include "ca/authority.h"
#include "pki/certificate.h"
#include "registry/certificate_record.h"
#include "registry/registry.h"

namespace devid::ca {

// AuthenticatedCertificate is what ClientCertificateVerifier proved: the TLS client holds the key
// of certificate, a current device certificate devid issued to registration_id.
struct AuthenticatedCertificate {
  pki::Certificate certificate;
  registry::CertificateRecord record;  // the inventory's record of it
  std::string registration_id;         // the subject CN
};

// ClientCertificateVerifier authenticates a TLS client by a certificate devid issued. The TLS
// handshake has already proved the client holds the certificate's key (the server requests a
// certificate and accepts any chain, net::ServerOptions::request_client_certificate); this checks
// the certificate itself. A path that validated is remembered for a minute (ExpiringMemo);
// validity, the inventory record and revocation are checked on every call. Thread-safe.
class ClientCertificateVerifier {
 public:
  // The verifier keeps references to authority, registry and clock; all must outlive it.
  ClientCertificateVerifier(const Authority& authority, registry::Registry& registry,
                            const Clock& clock)
      : authority_(authority), registry_(registry), clock_(clock) {}

  // Observe records a certificate a TLS client presented in the inventory (discovery,
  // Registry::ObserveCertificate): new ones as observed, known ones get their last_seen moved.
  // Fails with the store's error; callers treat the observation as best effort.
  Status Observe(const pki::Certificate& certificate);

  // Verify checks that certificate is valid now (kUnauthenticated "... expired at ..." or "... not
  // valid before ..."), chains to one of the authority's roots for TLS client authentication
  // (kUnauthenticated "... was not issued by devid's CA ...", naming OpenSSL's reason), is in the
  // inventory as a certificate devid issued (kUnauthenticated "... is not in devid's certificate
  // inventory") and is not revoked (kPermissionDenied "... was revoked ..."), and has a subject CN.
  // Store errors are returned as they are.
  Result<AuthenticatedCertificate> Verify(pki::Certificate certificate);

 private:
  const Authority& authority_;
  registry::Registry& registry_;
  const Clock& clock_;
  ExpiringMemo<bool> verified_paths_;  // by the certificate's SHA-256 thumbprint
};

}  // namespace devid::ca
