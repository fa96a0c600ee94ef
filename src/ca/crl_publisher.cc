#include "ca/crl_publisher.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <ctime>

#include "base/hex.h"
#include "ca/crl.h"
#include "ossl/digests.h"
#include "ossl/revocation_handles.h"

namespace devid::ca {
namespace {

// Etag labels a CRL for HTTP caching by its content: 16 bytes of SHA-256(DER), hex.
std::string Etag(const std::string& der) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(der.data(), der.size(), md, &length, ossl::Sha256Md(), nullptr);
  return HexEncode(std::span<const uint8_t>(md, 16));
}

std::chrono::system_clock::time_point TimeOf(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

CrlPublisher::CrlPublisher(const Authority& authority, registry::Registry& registry,
                           const Clock& clock, CrlOptions options)
    : authority_(authority), registry_(registry), clock_(clock), options_(options) {}

Result<std::shared_ptr<const PublishedCrl>> CrlPublisher::Crl(std::string_view key_id) {
  const IssuingCa* issuer = nullptr;
  for (const IssuingCa& candidate : authority_.issuers()) {
    if (KeyIdHex(candidate.certificate) == key_id) issuer = &candidate;
  }
  if (issuer == nullptr) {
    std::lock_guard lock(mutex_);
    if (auto it = signed_.find(key_id); it != signed_.end()) return it->second;
    return std::unexpected(NotFound("no CA of this server has key ID " + std::string(key_id)));
  }
  DEVID_ASSIGN_OR_RETURN(int64_t version, registry_.RevocationVersion());
  std::lock_guard lock(mutex_);
  auto it = cache_.find(key_id);
  if (it != cache_.end() && it->second->version == version &&
      clock_.Now() < it->second->this_update + options_.validity / 2) {
    return it->second;
  }
  DEVID_ASSIGN_OR_RETURN(auto crl, Make(*issuer, version));
  cache_[std::string(key_id)] = crl;
  return crl;
}

Result<std::shared_ptr<const PublishedCrl>> CrlPublisher::Make(const IssuingCa& issuer,
                                                               int64_t version) {
  // thisUpdate is taken after the version was read: a CRL reflecting a later revocation always
  // has a later (or equal) second and a larger version, so its number is larger (CrlNumber).
  CrlContent content;
  content.this_update = clock_.Now();
  content.next_update = content.this_update + options_.validity;
  content.number = CrlNumber(content.this_update, version);
  registry::CertificateFilter filter{.issuer_key_id = KeyIdHex(issuer.certificate),
                                     .source = registry::CertificateSource::kIssued,
                                     .revoked = true};
  registry::PageRequest page{.max_items = 1000};
  do {
    auto records = registry_.QueryCertificates(filter, page);
    if (!records) {
      return std::unexpected(records.error().WithContext("listing revoked certificates of " +
                                                         issuer.certificate.SubjectName()));
    }
    for (const registry::CertificateRecord& record : records->items) {
      if (record.not_after < content.this_update) continue;
      content.entries.push_back({record.serial, record.revoked_at, record.revocation_reason});
    }
    page.continuation = records->continuation;
  } while (!page.continuation.empty());

  auto crl = std::make_shared<PublishedCrl>();
  DEVID_ASSIGN_OR_RETURN(crl->der, BuildCrl(issuer.certificate, *issuer.key, content));
  crl->this_update = content.this_update;
  crl->next_update = content.next_update;
  crl->number = content.number;
  crl->version = version;
  crl->etag = Etag(crl->der);
  return crl;
}

Status CrlPublisher::AddSigned(std::string key_id, std::string der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::UniquePtr<X509_CRL> parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!parsed) {
    ERR_clear_error();
    return std::unexpected(InvalidArgument("the CRL of " + key_id + " does not parse"));
  }
  auto crl = std::make_shared<PublishedCrl>();
  crl->this_update = TimeOf(X509_CRL_get0_lastUpdate(parsed.get()));
  crl->next_update = TimeOf(X509_CRL_get0_nextUpdate(parsed.get()));
  crl->etag = Etag(der);
  crl->der = std::move(der);
  std::lock_guard lock(mutex_);
  signed_[std::move(key_id)] = std::move(crl);
  return Ok();
}

}  // namespace devid::ca
