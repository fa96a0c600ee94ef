#pragma once

// What a device trusts when it authenticates another device directly, with no server at that
// moment (docs/peers.md): devid's CA certificates and a CRL for each of them, cached in a file
// and refreshed from devid whenever it can be reached.

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "devid/est_client.h"
#include "pki/certificate.h"

namespace devid::sdk {

// PeerTrustOptions say where the cache lives and how old it may grow.
struct PeerTrustOptions {
  // directory holds the cache file peer-trust.pem (created by Refresh or Install).
  std::string directory;
  // max_crl_age is how long after the last successful refresh peers are still accepted; past it
  // every peer is refused until the next refresh succeeds (fail-closed).
  std::chrono::seconds max_crl_age{std::chrono::hours(24)};
};

// VerifiedPeer is who a peer proved to be.
struct VerifiedPeer {
  std::string name;    // the certificate's subject CN (devid: the registration ID)
  std::string serial;  // uppercase hex
};

// PeerTrust is a device's trust bundle and cached CRL set. Copyable; not thread-safe to refresh
// while another thread verifies.
class PeerTrust {
 public:
  // Open loads the cache in options.directory when there is one, re-checking every CRL's
  // signature; a missing cache is an empty trust that refuses every peer. Fails with
  // kFailedPrecondition when the cache file does not hold a consistent set (it is left in place).
  static Result<PeerTrust> Open(PeerTrustOptions options, const Clock& clock);

  // Refresh fetches devid's CA certificates (EST cacerts, over TLS authenticated by
  // server.trust_bundle_pem) and each CA's CRL (GET /crl/<key id>.crl on the same server), then
  // Installs them. On any failure the cached copy stays as it was. Fails with kUnavailable when
  // the server cannot be reached, and as Install does.
  Status Refresh(const EstOptions& server);

  // Install checks and persists a new set: at least one self-signed root, every other CA chains
  // to the roots, and every CA has a CRL signed by it that is current (thisUpdate not in the
  // future, nextUpdate not passed) and not older than the cached one. Fails with
  // kFailedPrecondition naming the CA at fault and changes nothing.
  Status Install(std::vector<pki::Certificate> ca_certificates, std::vector<std::string> crls_der);

  // VerifyPeer checks a peer's certificate (untrusted: what else it sent) as of now: the cache is
  // no older than max_crl_age, the path verifies to a cached root (RFC 5280 §6.1), the leaf is fit
  // for TLS client authentication, no certificate of the path is on a cached CRL, and, when
  // expected_name is not empty, its CN equals it. Fails with kUnauthenticated saying why.
  Result<VerifiedPeer> VerifyPeer(const pki::Certificate& leaf,
                                  std::span<const pki::Certificate> untrusted,
                                  std::string_view expected_name = {}) const;

  // fetched_at returns when the cache was last refreshed (the epoch when it never was).
  std::chrono::system_clock::time_point fetched_at() const { return fetched_at_; }
  // ca_count / crl_count say how much is cached.
  size_t ca_count() const { return roots_.size() + intermediates_.size(); }
  size_t crl_count() const { return crls_der_.size(); }
  // cache_file is the path of the cache.
  std::string cache_file() const;

 private:
  PeerTrust(PeerTrustOptions options, const Clock& clock)
      : options_(std::move(options)), clock_(&clock) {}

  PeerTrustOptions options_;
  const Clock* clock_;
  // Parsed once when loaded or installed, not on every handshake.
  std::vector<pki::Certificate> roots_;
  std::vector<pki::Certificate> intermediates_;
  std::vector<std::string> crls_der_;
  std::chrono::system_clock::time_point fetched_at_{};
};

}  // namespace devid::sdk
