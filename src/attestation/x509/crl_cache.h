#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pki/certificate.h"

namespace devid::attestation {

// CrlUnavailablePolicy says what a validation does when a certificate names a CRL source but no
// current, correctly signed CRL can be had from it.
enum class CrlUnavailablePolicy {
  kReject,  // fail closed: the certificate is refused (the default)
  kAccept,  // fail open: the certificate is accepted and a warning logged
};

// ParseCrlUnavailablePolicy parses "reject" or "accept"; anything else fails with
// kInvalidArgument.
Result<CrlUnavailablePolicy> ParseCrlUnavailablePolicy(std::string_view text);

// CrlCacheOptions configures a CrlCache.
struct CrlCacheOptions {
  // files are CRLs (PEM or DER) the operator provides, for CAs whose distribution points devid
  // cannot reach. Each is re-read when its modification time or size changes.
  std::vector<std::string> files;
  // fetch_distribution_points fetches the http:// CRL distribution points (RFC 5280 §4.2.1.13)
  // of the certificates validated.
  bool fetch_distribution_points = true;
  CrlUnavailablePolicy unavailable = CrlUnavailablePolicy::kReject;
  // request_wait bounds how long a validation waits for the first fetch of a distribution point
  // the cache has not seen; afterwards requests use the cached copy and never wait.
  std::chrono::milliseconds request_wait{2000};
  // refresh_before: a CRL is fetched again this long before its nextUpdate.
  std::chrono::seconds refresh_before{300};
  // max_age: a CRL is fetched again at least this often, even when its nextUpdate is far off.
  std::chrono::seconds max_age{3600};
  // retry_interval is the wait after a failed fetch before the next try.
  std::chrono::seconds retry_interval{30};
  // poll_interval is how often the background thread looks for changed files and due refreshes.
  std::chrono::milliseconds poll_interval{1000};
  // own_issuer_thumbprints (SHA-256, as pki::Certificate::Sha256Thumbprint) are devid's CA
  // certificates: what they issued is checked in devid's inventory, not here.
  std::set<std::string> own_issuer_thumbprints;
};

// CrlFetcher returns the body at an http:// URL or fails; it must bound its own time.
using CrlFetcher = std::function<Result<std::string>(const std::string& url)>;

// CrlCache checks certificate paths against the CRLs of third-party CAs (RFC 5280 §6.3): CRLs
// fetched from the certificates' distribution points or read from configured files, kept in
// memory, refreshed by a background thread before their nextUpdate, re-read when a file changes,
// and signature-checked against the issuer in the path. A failed refresh keeps the last good copy
// until its nextUpdate passes. Thread-safe; the background thread stops in the destructor.
class CrlCache {
 public:
  // Start loads options.files and starts the background thread. It keeps clock (which must
  // outlive the cache) for CRL validity and refresh times. Fails with kInvalidArgument naming a
  // configured file that cannot be read or is not a CRL: a typo must not start a server that
  // silently checks nothing.
  static Result<std::unique_ptr<CrlCache>> Start(CrlCacheOptions options, CrlFetcher fetcher,
                                                 const Clock& clock);
  ~CrlCache();
  CrlCache(const CrlCache&) = delete;
  CrlCache& operator=(const CrlCache&) = delete;

  // CheckPath checks every certificate of path (leaf first, trust anchor last, as VerifyChain
  // returns it) but the anchor against its issuer's CRL, the next certificate in path.
  // Certificates devid's CAs issued, and those that name no http:// distribution point and whose
  // issuer has no configured CRL, are not checked here. Fails with kUnauthenticated when a
  // certificate is revoked ("certificate CN=x (serial 0A) is revoked by CN=y's CRL"), and, under
  // CrlUnavailablePolicy::kReject, when no current CRL signed by the issuer can be had ("no
  // current CRL for ...: CAUSE"). Waits at most options.request_wait, for a first fetch.
  Status CheckPath(std::span<const pki::Certificate> path);

  // RefreshDue runs the background work once, now: re-reads changed files and fetches the
  // distribution points that are new or due. Tests call it to avoid waiting on the thread.
  void RefreshDue();

  // LoadedCrl is one parsed CRL and where it came from (defined in the .cc file).
  struct LoadedCrl;

 private:
  struct Source {
    std::shared_ptr<const LoadedCrl> good;  // the last CRL that loaded (and verified, if fetched)
    std::string last_error;                 // why the last load failed; "" after a success
    bool attempted = false;                 // a load has finished at least once
    std::chrono::system_clock::time_point next_attempt;
    std::shared_ptr<const pki::Certificate> issuer;  // distribution points: who must sign
    int64_t file_mtime = 0;                          // files: what was last read
    int64_t file_size = -1;
  };

  CrlCache(CrlCacheOptions options, CrlFetcher fetcher, const Clock& clock);
  void Run(std::stop_token stop);
  // LoadFile re-reads files[path] when it changed; returns false when it is unreadable.
  bool LoadFile(const std::string& path);
  void Fetch(const std::string& url);
  // Current returns the CRLs for certificate (whose issuer is issuer) and whether it names any
  // source at all; waits for first fetches.
  std::vector<std::shared_ptr<const LoadedCrl>> Current(const pki::Certificate& certificate,
                                                        const pki::Certificate& issuer,
                                                        bool& has_source, std::string& why_none);

  const CrlCacheOptions options_;
  const CrlFetcher fetcher_;
  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable_any changed_;  // a fetch finished, or work was asked for
  bool work_requested_ = false;
  std::map<std::string, Source> files_;  // by path
  std::map<std::string, Source> urls_;   // by distribution point URL
  std::jthread worker_;                  // last: stops before the members it uses go
};

}  // namespace devid::attestation
