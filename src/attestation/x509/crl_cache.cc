#include "attestation/x509/crl_cache.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>

#include "base/file.h"
#include "ossl/revocation_handles.h"
#include "ossl/unique_ptr.h"

namespace devid::attestation {

using TimePoint = std::chrono::system_clock::time_point;

struct CrlCache::LoadedCrl {
  ossl::UniquePtr<X509_CRL> crl;
  TimePoint this_update;
  TimePoint next_update = TimePoint::max();  // none given: never stale by time
  std::string origin;                        // the file or URL it came from
  // verified_by caches the issuers (SHA-256 thumbprints) whose key checked its signature.
  mutable std::mutex verified_mutex;
  mutable std::set<std::string> verified_by;
};

namespace {

TimePoint FromAsn1Time(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return TimePoint::min();
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Result<std::shared_ptr<CrlCache::LoadedCrl>> ParseCrl(std::string_view bytes,
                                                      const std::string& origin);

// DistributionPointUrls lists the http:// URIs of certificate's CRL distribution points whose
// CRL the issuer itself signs (RFC 5280 §4.2.1.13; indirect CRLs, with cRLIssuer, are skipped).
std::vector<std::string> DistributionPointUrls(const pki::Certificate& certificate) {
  std::vector<std::string> out;
  auto* points = static_cast<STACK_OF(DIST_POINT)*>(
      X509_get_ext_d2i(certificate.get(), NID_crl_distribution_points, nullptr, nullptr));
  if (points == nullptr) {
    ERR_clear_error();
    return out;
  }
  for (int i = 0; i < sk_DIST_POINT_num(points); ++i) {
    const DIST_POINT* point = sk_DIST_POINT_value(points, i);
    if (point->distpoint == nullptr || point->distpoint->type != 0 || point->CRLissuer != nullptr) {
      continue;
    }
    const GENERAL_NAMES* names = point->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, j);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      std::string url(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
      if (url.starts_with("http://")) out.push_back(std::move(url));
    }
  }
  sk_DIST_POINT_pop_free(points, DIST_POINT_free);
  return out;
}

bool NameMatches(const CrlCache::LoadedCrl& loaded, const pki::Certificate& issuer) {
  return X509_NAME_cmp(X509_CRL_get_issuer(loaded.crl.get()),
                       X509_get_subject_name(issuer.get())) == 0;
}

// SignedBy tells whether issuer issued loaded (RFC 5280 §6.3.3 (f), (g)): same name, allowed to
// sign CRLs, and the signature checks with its key.
bool SignedBy(const CrlCache::LoadedCrl& loaded, const pki::Certificate& issuer) {
  if (!NameMatches(loaded, issuer)) return false;
  std::string thumbprint = issuer.Sha256Thumbprint();
  {
    std::lock_guard lock(loaded.verified_mutex);
    if (loaded.verified_by.contains(thumbprint)) return true;
  }
  // X509_get_key_usage gives all bits when the extension is absent.
  bool may_sign = (X509_get_key_usage(issuer.get()) & KU_CRL_SIGN) != 0;
  EVP_PKEY* key = X509_get0_pubkey(issuer.get());
  bool verified = may_sign && key != nullptr && X509_CRL_verify(loaded.crl.get(), key) == 1;
  ERR_clear_error();
  if (verified) {
    std::lock_guard lock(loaded.verified_mutex);
    loaded.verified_by.insert(std::move(thumbprint));
  }
  return verified;
}

std::string FormatTime(TimePoint t) {
  return t == TimePoint::max() ? std::string("never") : FormatUtc(t);
}

}  // namespace

namespace {

Result<std::shared_ptr<CrlCache::LoadedCrl>> ParseCrl(std::string_view bytes,
                                                      const std::string& origin) {
  ossl::UniquePtr<X509_CRL> crl;
  if (bytes.find("-----BEGIN X509 CRL-----") != std::string_view::npos) {
    ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    if (bio) crl.reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size())));
    if (crl && p != reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size()) {
      crl.reset();
    }
  }
  ERR_clear_error();
  if (!crl) {
    return std::unexpected(InvalidArgument("loading the CRL from " + origin +
                                           ": not a PEM or DER X.509 CRL"));
  }
  auto loaded = std::make_shared<CrlCache::LoadedCrl>();
  loaded->this_update = FromAsn1Time(X509_CRL_get0_lastUpdate(crl.get()));
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get()); next != nullptr) {
    loaded->next_update = FromAsn1Time(next);
  }
  loaded->origin = origin;
  loaded->crl = std::move(crl);
  return loaded;
}

}  // namespace

Result<CrlUnavailablePolicy> ParseCrlUnavailablePolicy(std::string_view text) {
  if (text == "reject") return CrlUnavailablePolicy::kReject;
  if (text == "accept") return CrlUnavailablePolicy::kAccept;
  return std::unexpected(InvalidArgument("must be \"reject\" or \"accept\""));
}

CrlCache::CrlCache(CrlCacheOptions options, CrlFetcher fetcher, const Clock& clock)
    : options_(std::move(options)), fetcher_(std::move(fetcher)), clock_(clock) {}

CrlCache::~CrlCache() {
  if (worker_.joinable()) {
    worker_.request_stop();
    worker_.join();
  }
}

Result<std::unique_ptr<CrlCache>> CrlCache::Start(CrlCacheOptions options, CrlFetcher fetcher,
                                                  const Clock& clock) {
  std::unique_ptr<CrlCache> cache(new CrlCache(std::move(options), std::move(fetcher), clock));
  for (const std::string& path : cache->options_.files) {
    if (!cache->LoadFile(path)) {
      return std::unexpected(InvalidArgument(cache->files_[path].last_error));
    }
  }
  cache->worker_ = std::jthread([raw = cache.get()](std::stop_token stop) { raw->Run(stop); });
  return cache;
}

void CrlCache::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    try {
      RefreshDue();
    } catch (const std::exception& e) {
      // A thread entry point: nothing may escape it (STYLE.md, errors).
      spdlog::error("refreshing CRLs: {}", e.what());
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, stop, options_.poll_interval, [this] { return work_requested_; });
    work_requested_ = false;
  }
}

bool CrlCache::LoadFile(const std::string& path) {
  struct stat info {};
  int64_t mtime = 0;
  int64_t size = -1;
  if (::stat(path.c_str(), &info) == 0) {
    mtime = static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
    size = static_cast<int64_t>(info.st_size);
  }
  {
    std::lock_guard lock(mutex_);
    Source& source = files_[path];
    if (source.attempted && source.file_mtime == mtime && source.file_size == size) {
      return source.last_error.empty();
    }
  }
  Result<std::shared_ptr<LoadedCrl>> loaded =
      std::unexpected(InvalidArgument("reading CRL file " + path + ": cannot be read"));
  if (auto bytes = ReadFile(path); bytes) loaded = ParseCrl(*bytes, path);
  std::lock_guard lock(mutex_);
  Source& source = files_[path];
  source.attempted = true;
  source.file_mtime = mtime;
  source.file_size = size;
  if (!loaded) {
    source.last_error = loaded.error().message();
    spdlog::warn("CRL file {} did not load ({}); {}", path, source.last_error,
                 source.good ? "keeping the copy loaded before" : "no CRL from it");
    return false;
  }
  source.good = std::move(*loaded);
  source.last_error.clear();
  spdlog::info("CRL loaded from {} (thisUpdate {}, nextUpdate {})", path,
               FormatTime(source.good->this_update), FormatTime(source.good->next_update));
  return true;
}

void CrlCache::Fetch(const std::string& url) {
  std::shared_ptr<const pki::Certificate> issuer;
  {
    std::lock_guard lock(mutex_);
    issuer = urls_[url].issuer;
  }
  Result<std::shared_ptr<LoadedCrl>> loaded = std::unexpected(Internal("not fetched"));
  if (auto body = fetcher_(url); body) {
    loaded = ParseCrl(*body, url);
  } else {
    loaded = std::unexpected(body.error());
  }
  // A CRL its issuer did not sign is no better than none: it must not displace a good copy.
  if (loaded && issuer && !SignedBy(**loaded, *issuer)) {
    loaded = std::unexpected(Unauthenticated("the CRL from " + url + " is not signed by " +
                                             issuer->SubjectName()));
  }
  const TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  Source& source = urls_[url];
  source.attempted = true;
  if (!loaded) {
    source.last_error = loaded.error().message();
    source.next_attempt = now + options_.retry_interval;
    spdlog::warn("CRL refresh failed: {}; {}", source.last_error,
                 source.good ? "keeping the copy valid until " +
                                   FormatTime(source.good->next_update)
                             : std::string("no CRL from it yet"));
  } else {
    // Never go back to an older CRL than the one held (a replayed or stale mirror).
    if (!source.good || (*loaded)->this_update >= source.good->this_update) {
      source.good = std::move(*loaded);
    }
    source.last_error.clear();
    TimePoint refresh = now + options_.max_age;
    if (source.good->next_update != TimePoint::max()) {
      refresh = std::min(refresh, source.good->next_update - options_.refresh_before);
    }
    source.next_attempt = std::max(refresh, now + options_.retry_interval);
    spdlog::debug("CRL fetched from {} (nextUpdate {})", url,
                  FormatTime(source.good->next_update));
  }
  changed_.notify_all();
}

void CrlCache::RefreshDue() {
  for (const std::string& path : options_.files) LoadFile(path);
  std::vector<std::string> due;
  {
    std::lock_guard lock(mutex_);
    const TimePoint now = clock_.Now();
    for (const auto& [url, source] : urls_) {
      if (!source.attempted || now >= source.next_attempt) due.push_back(url);
    }
  }
  for (const std::string& url : due) Fetch(url);
}

std::vector<std::shared_ptr<const CrlCache::LoadedCrl>> CrlCache::Current(
    const pki::Certificate& certificate, const pki::Certificate& issuer, bool& has_source,
    std::string& why_none) {
  std::vector<std::shared_ptr<const LoadedCrl>> held;
  std::vector<std::string> urls;
  if (options_.fetch_distribution_points) urls = DistributionPointUrls(certificate);
  {
    std::unique_lock lock(mutex_);
    for (const auto& [path, source] : files_) {
      if (source.good && NameMatches(*source.good, issuer)) held.push_back(source.good);
    }
    const auto deadline = std::chrono::steady_clock::now() + options_.request_wait;
    for (const std::string& url : urls) {
      Source& source = urls_[url];
      if (!source.issuer) source.issuer = std::make_shared<const pki::Certificate>(issuer.Clone());
      if (!source.attempted) {
        work_requested_ = true;
        changed_.notify_all();
        changed_.wait_until(lock, deadline, [&source] { return source.attempted; });
      }
      if (source.good) {
        held.push_back(source.good);
      } else {
        why_none = source.attempted ? source.last_error : "fetching " + url + " timed out";
      }
    }
  }
  has_source = !held.empty() || !urls.empty();
  const TimePoint now = clock_.Now();
  std::vector<std::shared_ptr<const LoadedCrl>> current;
  for (auto& loaded : held) {
    if (!SignedBy(*loaded, issuer)) {
      why_none = "the CRL from " + loaded->origin + " is not signed by " + issuer.SubjectName();
    } else if (now >= loaded->next_update) {
      why_none = "the CRL from " + loaded->origin + " is stale (nextUpdate " +
                 FormatTime(loaded->next_update) + ")";
    } else if (now < loaded->this_update) {
      why_none = "the CRL from " + loaded->origin + " is not yet valid (thisUpdate " +
                 FormatTime(loaded->this_update) + ")";
    } else {
      current.push_back(std::move(loaded));
    }
  }
  return current;
}

Status CrlCache::CheckPath(std::span<const pki::Certificate> path) {
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const pki::Certificate& certificate = path[i];
    const pki::Certificate& issuer = path[i + 1];
    if (options_.own_issuer_thumbprints.contains(issuer.Sha256Thumbprint())) continue;
    bool has_source = false;
    std::string why_none = "no CRL source answered";
    auto current = Current(certificate, issuer, has_source, why_none);
    if (!has_source) continue;  // the issuer publishes no revocation information devid can use
    for (const auto& loaded : current) {
      X509_REVOKED* entry = nullptr;
      // RFC 5280 §6.3.3 (i): revoked when the serial is listed (1; 2 is removeFromCRL).
      if (X509_CRL_get0_by_cert(loaded->crl.get(), &entry, certificate.get()) == 1) {
        return std::unexpected(Unauthenticated("certificate " + certificate.SubjectName() +
                                               " (serial " + certificate.SerialHex() +
                                               ") is revoked by " + issuer.SubjectName() +
                                               "'s CRL"));
      }
    }
    if (current.empty()) {
      std::string message = "no current CRL for certificate " + certificate.SubjectName() +
                            " (issuer " + issuer.SubjectName() + "): " + why_none;
      if (options_.unavailable == CrlUnavailablePolicy::kReject) {
        spdlog::warn("refusing a certificate path: {}", message);
        return std::unexpected(Unauthenticated(message));
      }
      spdlog::warn("accepting a certificate path unchecked (x509.crl_unavailable = accept): {}",
                   message);
    }
  }
  return Ok();
}

}  // namespace devid::attestation
