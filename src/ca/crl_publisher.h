#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "ca/authority.h"
#include "registry/registry.h"

namespace devid::ca {

// CrlOptions shapes the CRLs a CrlPublisher makes.
struct CrlOptions {
  // validity is nextUpdate - thisUpdate. Seven days lets a device that authenticates peers offline
  // with a cached CRL (the distributed method) stay offline for a week; online relying parties
  // learn of a revocation sooner, through OCSP or by re-fetching (a revocation makes a new CRL at
  // once). A CRL is regenerated when half its validity has passed, so a fetched one always has at
  // least half of it left.
  std::chrono::seconds validity{std::chrono::hours(24 * 7)};
};

// PublishedCrl is one signed CRL and its labels.
struct PublishedCrl {
  std::string der;
  std::chrono::system_clock::time_point this_update;
  std::chrono::system_clock::time_point next_update;
  uint64_t number = 0;
  std::string etag;     // quoted-string content for HTTP, from the DER's SHA-256
  int64_t version = 0;  // the registry's revocation version it was made from
};

// CrlPublisher makes and caches the CRL of each issuing CA of an Authority from the registry's
// certificate inventory: every issued, revoked, unexpired certificate whose issuer_key_id is the
// CA's key ID (RFC 5280 §3.3 lets a CRL drop entries once the certificate has expired). A cached
// CRL is reused while the registry's revocation version is unchanged and half its validity has
// not passed. Thread-safe; CRLs are made one at a time.
class CrlPublisher {
 public:
  // CrlPublisher keeps references to authority, registry and clock; they must outlive it.
  CrlPublisher(const Authority& authority, registry::Registry& registry, const Clock& clock,
               CrlOptions options = {});

  // Crl returns the current CRL of the issuing CA whose KeyIdHex is key_id. Fails with kNotFound
  // when no issuing CA has that key ID, and as the registry and the CA key.
  // For a key ID that is no issuing CA's it returns the CRL added with AddSigned, if any.
  Result<std::shared_ptr<const PublishedCrl>> Crl(std::string_view key_id);

  // AddSigned serves der, a CRL signed elsewhere (a root CA's, made by `devid ca` where the root
  // key lives), as the CRL of the CA whose key ID is key_id. Fails with kInvalidArgument when der
  // is not a CRL.
  Status AddSigned(std::string key_id, std::string der);

 private:
  Result<std::shared_ptr<const PublishedCrl>> Make(const IssuingCa& issuer, int64_t version);

  const Authority& authority_;
  registry::Registry& registry_;
  const Clock& clock_;
  CrlOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const PublishedCrl>, std::less<>> cache_;  // by key ID
  std::map<std::string, std::shared_ptr<const PublishedCrl>, std::less<>> signed_;  // by key ID
};

}  // namespace devid::ca
