#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "ca/authority.h"
#include "keys/key_store.h"
#include "pki/certificate.h"
#include "registry/registry.h"

namespace devid::ca {

// OcspResponseStatus is OCSPResponseStatus (RFC 6960 §4.2.1).
enum class OcspResponseStatus {
  kSuccessful = 0,
  kMalformedRequest = 1,
  kInternalError = 2,
  kTryLater = 3,
  kUnauthorized = 6,
};

// OcspSigner is a delegated OCSP responder (RFC 6960 §4.2.2.2): a certificate under the
// ocsp-signer profile (id-kp-OCSPSigning, ocsp-nocheck) issued by one issuing CA, and its key.
struct OcspSigner {
  const IssuingCa* issuer = nullptr;  // one of the authority's issuers; not owned
  pki::Certificate certificate;
  std::unique_ptr<keys::Key> key;
};

// OcspOptions shapes the responses.
struct OcspOptions {
  // validity is nextUpdate - thisUpdate of every response: how long a relying party may keep
  // trusting it. One hour bounds how long a client that caches responses can miss a revocation;
  // devid itself answers from fresh state at once. A cached response is replaced once half its
  // validity has passed, so clients never receive one about to expire.
  std::chrono::seconds validity{3600};
  size_t max_cached = 100000;    // cached responses kept at most; the cache empties when full
  size_t max_certificates = 16;  // CertIDs one request may ask about
};

// OcspAnswer is a DER OCSPResponse and what an HTTP layer needs to label it.
struct OcspAnswer {
  std::string der;
  OcspResponseStatus status = OcspResponseStatus::kInternalError;
  // For a successful response: when it was signed, when it expires, and an entity tag.
  std::chrono::system_clock::time_point produced_at;
  std::chrono::system_clock::time_point next_update;
  std::string etag;
  // error says why the status is not successful, for the log (never sent).
  std::string error;
};

// OcspResponder answers OCSP requests (RFC 6960) about the certificates an Authority's issuing
// CAs issued, from the registry's certificate inventory: good when the certificate was issued and
// is not revoked, revoked (time, reason) when it was, unknown when the issuer is ours but the
// serial is not in the inventory. A request naming any issuer that is not one of ours gets
// `unauthorized` (§2.3); one that does not parse, `malformedRequest`. A nonce (RFC 8954) is echoed;
// one outside 1..32 octets is malformed. Responses are signed by the issuer's delegated signer and
// carry its certificate.
//
// Responses to single-certificate requests without a nonce are cached by request, so a relying
// party's repeated request costs a lookup and one read of Registry::RevocationVersion instead of a
// signature: the cached response is served while the version is unchanged (a revocation on any
// node sharing the store bumps it) and until half its validity has passed. Thread-safe.
class OcspResponder {
 public:
  // Create keeps references to authority's issuing CAs, registry and clock, which must outlive
  // it, and takes the signers. Fails with kInvalidArgument when a signer's key does not match its
  // certificate or the certificate was not issued by its issuer.
  static Result<std::unique_ptr<OcspResponder>> Create(const Authority& authority,
                                                       std::vector<OcspSigner> signers,
                                                       registry::Registry& registry,
                                                       const Clock& clock,
                                                       OcspOptions options = {});

  // Respond answers one DER OCSPRequest with a DER OCSPResponse. It does not fail: errors become
  // response statuses (tryLater when the store is unavailable, internalError otherwise).
  OcspAnswer Respond(std::string_view request_der);

  ~OcspResponder();

 private:
  struct Issuer;
  struct Cached;
  struct Query;

  OcspResponder(std::vector<OcspSigner> signers, registry::Registry& registry, const Clock& clock,
                OcspOptions options);
  Result<OcspAnswer> Answer(std::string_view request_der,
                            const std::shared_ptr<const Cached>& cached, int64_t version);
  Result<OcspAnswer> Sign(const Issuer& issuer, const std::vector<Query>& queries,
                          const std::string& nonce_extension);
  void Store(std::string request_der, std::shared_ptr<const Cached> entry);

  std::vector<OcspSigner> signers_;
  registry::Registry& registry_;
  const Clock& clock_;
  OcspOptions options_;
  std::vector<Issuer> issuers_;

  std::shared_mutex cache_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Cached>> cache_;  // by request DER
};

// OcspErrorResponse returns the DER OCSPResponse carrying only status (no responseBytes), as
// every status but successful is sent (RFC 6960 §4.2.1).
std::string OcspErrorResponse(OcspResponseStatus status);

}  // namespace devid::ca
