#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/verified_device.h"
#include "attestation/x509/chain_verifier.h"
#include "attestation/x509/crl_cache.h"
#include "attestation/x509/parsed_certificate_cache.h"
#include "base/clock.h"
#include "base/expiring_memo.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::attestation {

// X509Verifier authenticates a device by the TLS client certificate chain it presented (protocol
// notes §3): the TLS handshake proved the device holds the leaf's key; this decides which
// enrollment, if any, trusts that certificate. Matching, most specific first:
//   1. the individual enrollment for the registration ID, when its primary or secondary client
//      certificate has the leaf's SHA-256 thumbprint;
//   2. else the first group candidate (Registry::FindGroupCandidates, x509) whose primary or
//      secondary signing certificate, or verified CA certificate named in caReferences, the chain
//      validates to. A caReferences entry naming an unknown or unverified CA trusts nothing; when
//      no group matches, that is the reason given.
// The leaf's subject CN must be the registration ID. The path is validated with VerifyChain
// (RFC 5280, strict, TLS client purpose, devid's algorithm floor) up to the enrolled certificate
// as the trust anchor, and no certificate on it may be revoked in devid's inventory
// or, with a CrlCache, in its third-party issuer's CRL. A validated path is remembered for a
// minute (ValidatedPath); revocation and the enrollment are read at every request. The leaf is
// recorded in the inventory as observed. The first match decides: a disabled one refuses.
class X509Verifier {
 public:
  // The verifier keeps references to registry and clock; both must outlive it.
  // crl_cache, when given, also checks third-party CAs' CRLs (not owned; it must outlive this).
  X509Verifier(registry::Registry& registry, const Clock& clock, CrlCache* crl_cache = nullptr)
      : registry_(registry), clock_(clock), crl_cache_(crl_cache) {}

  // Verify authenticates peer_chain_der (the TLS client's chain, leaf first) for registration_id.
  // Fails with kUnauthenticated saying why (no certificate, CN mismatch, no enrollment trusts it,
  // the path does not validate — with OpenSSL's reason —, revoked), kPermissionDenied (the
  // matching enrollment or group is disabled) or a store error.
  Result<VerifiedDevice> Verify(std::string_view registration_id,
                                std::span<const std::string> peer_chain_der);
  // Verify is the same for a chain already parsed (api::Request::peer_certificates), which it
  // only borrows for the call.
  Result<VerifiedDevice> Verify(std::string_view registration_id,
                                std::span<const pki::Certificate> peer_chain);

 private:
  // AddCaReferences appends the verified CA certificates group's caReferences name to anchors. It
  // records why a reference cannot back the group: in ca_error when the chain validates to an
  // unverified one, in unknown_ca_error (first only) when none has the name. Fails only on a
  // store error.
  Status AddCaReferences(const registry::EnrollmentGroup& group, const pki::Certificate& leaf,
                         std::span<const pki::Certificate> intermediates,
                         std::vector<std::shared_ptr<const pki::Certificate>>& anchors,
                         std::optional<Error>& ca_error, std::optional<Error>& unknown_ca_error);
  // ValidatedPath is VerifyChain from leaf (SHA-256 thumbprint leaf_thumbprint) through the
  // presented intermediates to anchor, remembered for a minute (never past a certificate's
  // notAfter) by exactly those certificates: a device polling its status presents the same chain
  // each time. Revocation, the enrollment and the CN are still checked on every request.
  Result<std::vector<pki::Certificate>> ValidatedPath(
      const pki::Certificate& leaf, const std::string& leaf_thumbprint,
      std::span<const pki::Certificate> intermediates, const pki::Certificate& anchor);
  // Anchors returns an enrollment's certificates (PEM), decoded, skipping empty slots.
  Result<std::vector<std::shared_ptr<const ParsedCertificate>>> Anchors(
      std::initializer_list<const std::string*> pems);

  registry::Registry& registry_;
  const Clock& clock_;
  CrlCache* crl_cache_;
  // The certificates recorded as observed in the last minute: a device that authenticates many
  // times a minute moves its inventory last_seen once a minute, not on every request.
  ExpiringMemo<bool> observed_{std::chrono::seconds(60)};
  ParsedCertificateCache parsed_;
  ExpiringMemo<std::shared_ptr<const std::vector<pki::Certificate>>> validated_paths_;
};

}  // namespace devid::attestation
