#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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

// OcspSignerNeedsRenewal tells whether a delegated signer's certificate should be replaced at
// now: when less than a third of its lifetime is left, so a renewal happens well before expiry,
// and the responses it signed (valid OcspOptions::validity) never outlive it.
bool OcspSignerNeedsRenewal(const pki::Certificate& certificate,
                            std::chrono::system_clock::time_point now);

// OcspSignerRenewer returns a fresh delegated signer for an issuing CA (a new certificate under the
// ocsp-signer profile, recorded and stored wherever the caller keeps signers), or fails.
using OcspSignerRenewer = std::function<Result<OcspSigner>(const IssuingCa& issuer)>;

// OcspOptions shapes the responses.
struct OcspOptions {
  // validity is nextUpdate - thisUpdate of every response: how long a relying party may keep
  // trusting it. One hour bounds how long a client that caches responses can miss a revocation;
  // devid itself answers from fresh state at once. A cached response is replaced once half its
  // validity has passed, so clients never receive one about to expire.
  std::chrono::seconds validity{3600};
  size_t max_cached = 100000;    // cached responses kept at most; the cache empties when full
  size_t max_certificates = 16;  // CertIDs one request may ask about
  // version_max_age is how long after reading Registry::RevocationVersion RespondCached may
  // serve cached responses made at that version without reading it again: the longest a
  // revocation, on this node or another sharing the store, can go unseen by the non-blocking path
  // (relying parties may keep any response for minutes: see the HTTP max-age). Shorter sends more
  // requests through Respond and its read of the store.
  std::chrono::milliseconds version_max_age{100};
  // renewal_retry is how long the responder waits after a failed renewal of a signer that can
  // still sign before it tries again.
  std::chrono::seconds renewal_retry{60};
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
// node sharing the store bumps it) and until half its validity has passed. RespondCached serves
// them without even that read, for at most OcspOptions::version_max_age after Respond's last one.
// Thread-safe.
class OcspResponder {
 public:
  // Create keeps references to authority's issuing CAs, registry and clock, which must outlive
  // it, and takes the signers. Fails with kInvalidArgument when a signer's key does not match its
  // certificate or the certificate was not issued by its issuer.
  //
  // With renew set, a signer is replaced while the responder runs: the first response to be
  // signed once OcspSignerNeedsRenewal holds calls renew for that signer's CA (one call at a time)
  // and signs with the result when it passes the same checks as Create's signers. While the old
  // signer is still valid, other requests keep using it meanwhile, and a failed renewal keeps it
  // and is tried again after options.renewal_retry; once it has expired, a response waits for the
  // renewal, and is tryLater when that fails. Without renew, signers are used as given.
  static Result<std::unique_ptr<OcspResponder>> Create(const Authority& authority,
                                                       std::vector<OcspSigner> signers,
                                                       registry::Registry& registry,
                                                       const Clock& clock,
                                                       OcspOptions options = {},
                                                       OcspSignerRenewer renew = nullptr);

  // Respond answers one DER OCSPRequest with a DER OCSPResponse. It does not fail: errors become
  // response statuses (tryLater when the store is unavailable, internalError otherwise).
  OcspAnswer Respond(std::string_view request_der);

  // RespondCached answers request_der as Respond would, but only from the cache and without
  // blocking: it returns nullopt, for the caller to call Respond, when no response to exactly
  // these bytes is cached, the cached one is due for refresh, or the revocation version was not
  // read within options.version_max_age (Respond reads it) or has moved since the response was
  // made. It takes a shared lock and reads the clock, nothing else, so an I/O thread may call it.
  std::optional<OcspAnswer> RespondCached(std::string_view request_der);

  ~OcspResponder();

 private:
  struct Issuer;
  struct Signer;
  struct Cached;
  struct Query;

  OcspResponder(registry::Registry& registry, const Clock& clock, OcspOptions options,
                OcspSignerRenewer renew);
  static Result<std::shared_ptr<const Signer>> MakeSigner(OcspSigner signer);
  Result<OcspAnswer> Answer(std::string_view request_der,
                            const std::shared_ptr<const Cached>& cached, int64_t version);
  // CurrentSigner returns issuer's signer, renewed first when it is due (see Create); null when
  // issuer has none.
  Result<std::shared_ptr<const Signer>> CurrentSigner(Issuer& issuer);
  Result<std::shared_ptr<const Signer>> Renew(Issuer& issuer);
  Result<OcspAnswer> Sign(const Signer& signer, const std::vector<Query>& queries,
                          const std::string& nonce_extension);
  void Store(std::string request_der, std::shared_ptr<const Cached> entry);

  registry::Registry& registry_;
  const Clock& clock_;
  OcspOptions options_;
  OcspSignerRenewer renew_;
  std::vector<std::unique_ptr<Issuer>> issuers_;
  std::mutex signers_mutex_;  // guards each Issuer's signer and next renewal attempt
  std::mutex renew_mutex_;    // one renewal at a time

  std::shared_mutex cache_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Cached>> cache_;  // by request DER
  // The revocation version Respond last read, and when that read started; under cache_mutex_.
  int64_t version_ = -1;
  std::chrono::system_clock::time_point version_read_at_;
};

// OcspErrorResponse returns the DER OCSPResponse carrying only status (no responseBytes), as
// every status but successful is sent (RFC 6960 §4.2.1).
std::string OcspErrorResponse(OcspResponseStatus status);

}  // namespace devid::ca
