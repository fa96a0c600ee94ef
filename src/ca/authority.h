#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/profile.h"
#include "keys/key_store.h"
#include "pki/certificate.h"

namespace devid::ca {

// AuthorityOptions is the part of the CA's configuration that shapes what it issues.
struct AuthorityOptions {
  // base_url ("https://ca.example.com:8443") prefixes the revocation pointers written into
  // certificates: CRL at <base_url>/crl/<issuer key id>.crl, OCSP at <base_url>/ocsp, the issuer
  // at <base_url>/ca/<issuer key id>.cer. "" leaves the pointers out.
  std::string base_url;
  // backdate moves notBefore into the past to tolerate device clocks running a little behind.
  std::chrono::seconds backdate{300};
};

// CertificateRequest is what the caller of an issuance decides; everything else (extensions,
// lifetime, serial, issuer) comes from the profile and the authority.
struct CertificateRequest {
  std::string common_name;  // subject CN; for device-client certificates the registration ID
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  const EVP_PKEY* public_key = nullptr;  // the subject's key; not owned
  // public_key_info, when set, is public_key's SubjectPublicKeyInfo as a request carried it
  // (X509_REQ_get_X509_PUBKEY): copied into the certificate as is, which OpenSSL 3.0 does far
  // more cheaply than re-encoding public_key. Not owned.
  const X509_PUBKEY* public_key_info = nullptr;
  // validity, when set and shorter than the profile's, shortens the certificate's lifetime.
  std::optional<std::chrono::seconds> validity;
};

// IssueCertificate builds and signs one certificate under profile: a 128-bit random positive
// serial (RFC 5280 §4.1.2.2), notBefore = now - backdate and notAfter = now + lifetime (capped at
// the issuer's notAfter), subject CN, subjectAltName, basicConstraints, keyUsage, extKeyUsage,
// SKI (RFC 5280 §4.2.1.2 method 1) and AKI, and the revocation pointers when the profile wants them
// and options.base_url is set. issuer is null for a self-signed certificate (the root-ca profile),
// in which case signer must hold request.public_key's private half. Fails with kInvalidArgument
// for a request the profile does not allow (missing CN or SAN, CN longer than 64 characters
// (RFC 5280 Appendix A ub-common-name), a weak or unsupported public key) and with the signer's
// error.
Result<pki::Certificate> IssueCertificate(const Profile& profile, const CertificateRequest& request,
                                          const pki::Certificate* issuer, const keys::Key& signer,
                                          const AuthorityOptions& options, const Clock& clock,
                                          Random& random);

// IssuingCa is an intermediate (or imported) CA certificate and the key that signs with it.
struct IssuingCa {
  pki::Certificate certificate;
  std::unique_ptr<keys::Key> key;
};

// Authority issues end-entity certificates under named profiles. It holds one or more issuing
// CAs: all of them (and the roots) are trusted for verification, so a CA rollover keeps old
// certificates valid, and the newest one (the last whose validity covers now) signs. Thread-safe
// for concurrent Issue and Verify; immutable after Create.
class Authority {
 public:
  // Create checks that every issuing CA's key matches its certificate and that each chains to one
  // of roots, and fails with kInvalidArgument otherwise (or when either list is empty).
  static Result<std::unique_ptr<Authority>> Create(AuthorityOptions options,
                                                   std::vector<pki::Certificate> roots,
                                                   std::vector<IssuingCa> issuers,
                                                   const Clock& clock, Random& random);

  // Issue signs request under the named end-entity profile with the current issuing CA. Fails with
  // kInvalidArgument for an unknown or CA profile and as IssueCertificate, and with
  // kFailedPrecondition when no issuing CA is valid now.
  Result<pki::Certificate> Issue(std::string_view profile, const CertificateRequest& request) const;

  // IssueUnparsed issues as Issue but returns the certificate as built and signed, not parsed
  // back from its DER: it encodes, names, dates, thumbprints and chains the same, but when
  // request.public_key_info is set its public key is not decoded (X509_get0_pubkey returns null),
  // which saves OpenSSL 3.0 a provider decoder pass per certificate. For callers that record and
  // send the certificate (IssueRecorded); parse its DER for anything that needs the key.
  Result<pki::Certificate> IssueUnparsed(std::string_view profile,
                                         const CertificateRequest& request) const;

  // IssueWith signs request under the named end-entity profile with issuer, which must be one of
  // issuers() (an OCSP responder certificate must come from the CA whose certificates it speaks
  // for, RFC 6960 §4.2.2.2, even when that CA no longer issues). Fails as Issue, and with
  // kFailedPrecondition when issuer has expired.
  Result<pki::Certificate> IssueWith(const IssuingCa& issuer, std::string_view profile,
                                     const CertificateRequest& request) const;

  // Verify builds and checks a path from certificate to a root with OpenSSL's X509_verify_cert in
  // strict mode (X509_V_FLAG_X509_STRICT) at the clock's time. purpose is an X509_PURPOSE_* id, or
  // 0 for any. Fails with kUnauthenticated naming the OpenSSL verification error.
  Status Verify(const pki::Certificate& certificate, int purpose = 0) const;

  // CurrentIssuer returns the issuing CA that signs now; fails with kFailedPrecondition when
  // every issuing CA has expired or is not yet valid.
  Result<const IssuingCa*> CurrentIssuer() const;

  // IssuerOf returns the issuing CA certificate that signed certificate, or nullptr when none of
  // this authority's did.
  const pki::Certificate* IssuerOf(const pki::Certificate& certificate) const;

  // ChainPem returns certificate followed by the issuing CA that signed it (PEM), the chain a TLS
  // peer or EST client needs (RFC 7030 §4.2.3 leaves the chain to cacerts; TLS wants it sent).
  std::string ChainPem(const pki::Certificate& certificate) const;

  // TrustBundlePem returns every root, PEM-concatenated.
  std::string TrustBundlePem() const;

  // roots are the trust anchors; issuers the issuing CAs, oldest first; both owned here.
  const std::vector<pki::Certificate>& roots() const { return roots_; }
  const std::vector<IssuingCa>& issuers() const { return issuers_; }
  // options are the options the authority was created with.
  const AuthorityOptions& options() const { return options_; }

 private:
  Authority(AuthorityOptions options, std::vector<pki::Certificate> roots,
            std::vector<IssuingCa> issuers, const Clock& clock, Random& random)
      : options_(std::move(options)),
        roots_(std::move(roots)),
        issuers_(std::move(issuers)),
        clock_(&clock),
        random_(&random) {}

  AuthorityOptions options_;
  std::vector<pki::Certificate> roots_;
  std::vector<IssuingCa> issuers_;  // oldest first
  const Clock* clock_;
  Random* random_;
};

// KeyIdHex returns a certificate's subjectKeyIdentifier as lowercase hex, or "" when it has none.
// devid names a CA's CRL and issuer URLs by it.
std::string KeyIdHex(const pki::Certificate& certificate);

// AuthorityKeyIdHex returns a certificate's authorityKeyIdentifier keyIdentifier as lowercase
// hex (the issuing CA's KeyIdHex), or "" when it has none.
std::string AuthorityKeyIdHex(const pki::Certificate& certificate);

}  // namespace devid::ca
