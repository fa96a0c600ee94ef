#include "ca/ocsp_responder.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include <mutex>
#include <optional>

#include "base/hex.h"
#include "ca/der.h"
#include "ca/signed_structure.h"
#include "ossl/digests.h"
#include "ossl/error.h"
#include "ossl/revocation_handles.h"

namespace devid::ca {
namespace {

using std::chrono::system_clock;

// The CertID hash algorithms a client may use (RFC 6960 §4.1.1 names SHA-1; RFC 6960 §4.3 and
// RFC 5019 clients use SHA-256 as well).
constexpr int kCertIdDigests[] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};

// RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)).
constexpr int kMaxNonce = 32;

enum class CertStatus { kGood, kRevoked, kUnknown };

Result<std::string> GeneralizedTimeDer(system_clock::time_point t) {
  ossl::UniquePtr<ASN1_GENERALIZEDTIME> time(
      ASN1_GENERALIZEDTIME_set(nullptr, system_clock::to_time_t(t)));
  if (!time) return std::unexpected(ossl::ErrorFromQueue("encoding an OCSP time"));
  return der::Encode(i2d_ASN1_GENERALIZEDTIME, static_cast<const ASN1_GENERALIZEDTIME*>(time.get()),
                     "an OCSP time");
}

std::string Enumerated(int value) {
  return der::Tlv(V_ASN1_ENUMERATED, V_ASN1_UNIVERSAL, false,
                  std::string(1, static_cast<char>(value)));
}

std::string EtagOf(std::string_view der) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(der.data(), der.size(), md, &length, ossl::Sha256Md(), nullptr);
  return HexEncode(std::span<const uint8_t>(md, 16));
}

OcspAnswer StatusOnly(OcspResponseStatus status, std::string error = "") {
  OcspAnswer answer;
  answer.status = status;
  answer.der = OcspErrorResponse(status);
  answer.error = std::move(error);
  return answer;
}

// NonceExtension returns the request's nonce extension DER ("" when it has none), or fails with
// kInvalidArgument when it is not an OCTET STRING of 1 to 32 octets (RFC 8954 §2.1) or repeated.
Result<std::string> NonceExtension(OCSP_REQUEST* request) {
  int index = OCSP_REQUEST_get_ext_by_NID(request, NID_id_pkix_OCSP_Nonce, -1);
  if (index < 0) return std::string();
  if (OCSP_REQUEST_get_ext_by_NID(request, NID_id_pkix_OCSP_Nonce, index) >= 0) {
    return std::unexpected(InvalidArgument("the request has two nonces"));
  }
  X509_EXTENSION* extension = OCSP_REQUEST_get_ext(request, index);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(extension);
  const unsigned char* p = ASN1_STRING_get0_data(value);
  const unsigned char* end = p + ASN1_STRING_length(value);
  ossl::UniquePtr<ASN1_OCTET_STRING> nonce(
      d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(end - p)));
  ERR_clear_error();
  if (!nonce || p != end) {
    return std::unexpected(InvalidArgument("the nonce is not an OCTET STRING"));
  }
  int length = ASN1_STRING_length(nonce.get());
  if (length < 1 || length > kMaxNonce) {
    return std::unexpected(InvalidArgument("a nonce of " + std::to_string(length) +
                                           " octets: RFC 8954 allows 1 to 32"));
  }
  return der::Encode(i2d_X509_EXTENSION, static_cast<const X509_EXTENSION*>(extension),
                     "the nonce");
}

}  // namespace

// Signer is a delegated signer with the parts of every response it signs precomputed.
struct OcspResponder::Signer {
  OcspSigner signer;
  std::string responder_id;  // ResponderID byKey [2] (RFC 6960 §4.2.2.3)
  std::string certs;         // certs [0] EXPLICIT SEQUENCE OF Certificate
};

// Issuer is one issuing CA as CertIDs name it: the hashes of its name and key per digest.
struct OcspResponder::Issuer {
  const IssuingCa* ca = nullptr;
  std::string key_id;  // KeyIdHex, the inventory's issuer_key_id
  struct Hashes {
    int nid;
    std::string name_hash;
    std::string key_hash;
  };
  std::vector<Hashes> hashes;
  // Under signers_mutex_: the signer (null when no delegated signer is available for the CA),
  // and when a failed renewal may be tried again.
  std::shared_ptr<const Signer> signer;
  system_clock::time_point next_renewal;
};

// MakeSigner checks that signer's key matches its certificate and that its CA issued it, and
// precomputes what its responses carry.
Result<std::shared_ptr<const OcspResponder::Signer>> OcspResponder::MakeSigner(OcspSigner signer) {
  if (signer.issuer == nullptr || !signer.key ||
      EVP_PKEY_eq(X509_get0_pubkey(signer.certificate.get()), signer.key->public_key()) != 1 ||
      X509_check_issued(signer.issuer->certificate.get(), signer.certificate.get()) != X509_V_OK) {
    ERR_clear_error();
    return std::unexpected(
        InvalidArgument("OCSP signer " + signer.certificate.SubjectName() +
                        ": its key does not match or its issuing CA did not issue it"));
  }
  unsigned char key_hash[EVP_MAX_MD_SIZE];
  unsigned int key_hash_length = 0;
  if (X509_pubkey_digest(signer.certificate.get(), EVP_sha1(), key_hash, &key_hash_length) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("hashing the OCSP signer's key"));
  }
  // ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }, explicitly tagged; KeyHash
  // is the SHA-1 of the signer's subjectPublicKey value (RFC 6960 §4.2.1).
  std::string responder_id = der::Explicit(
      2, der::Tlv(V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false,
                  std::string(reinterpret_cast<char*>(key_hash), key_hash_length)));
  std::string certs = der::Explicit(0, der::Sequence(signer.certificate.ToDer()));
  return std::make_shared<const Signer>(
      Signer{std::move(signer), std::move(responder_id), std::move(certs)});
}

// Query is one CertID of a request and what the inventory says about it.
struct OcspResponder::Query {
  std::string cert_id_der;
  std::string serial_hex;
  CertStatus status = CertStatus::kUnknown;
  system_clock::time_point revoked_at;
  int reason = 0;
};

// Cached is a signed response to one request, and the state it was made from.
struct OcspResponder::Cached {
  OcspAnswer answer;
  int64_t version = 0;
  system_clock::time_point refresh_at;
  CertStatus status = CertStatus::kGood;
  system_clock::time_point revoked_at;
  int reason = 0;
};

std::string OcspErrorResponse(OcspResponseStatus status) {
  return der::Sequence(Enumerated(static_cast<int>(status)));
}

bool OcspSignerNeedsRenewal(const pki::Certificate& certificate, system_clock::time_point now) {
  auto lifetime = certificate.NotAfter() - certificate.NotBefore();
  return certificate.NotAfter() - now < lifetime / 3;
}

OcspResponder::OcspResponder(registry::Registry& registry, const Clock& clock, OcspOptions options,
                             OcspSignerRenewer renew)
    : registry_(registry), clock_(clock), options_(options), renew_(std::move(renew)) {}

OcspResponder::~OcspResponder() = default;

Result<std::unique_ptr<OcspResponder>> OcspResponder::Create(const Authority& authority,
                                                             std::vector<OcspSigner> signers,
                                                             registry::Registry& registry,
                                                             const Clock& clock,
                                                             OcspOptions options,
                                                             OcspSignerRenewer renew) {
  std::vector<std::shared_ptr<const Signer>> checked;
  for (OcspSigner& signer : signers) {
    DEVID_ASSIGN_OR_RETURN(std::shared_ptr<const Signer> made, MakeSigner(std::move(signer)));
    checked.push_back(std::move(made));
  }
  std::unique_ptr<OcspResponder> responder(
      new OcspResponder(registry, clock, options, std::move(renew)));
  for (const IssuingCa& ca : authority.issuers()) {
    auto issuer = std::make_unique<Issuer>();
    issuer->ca = &ca;
    issuer->key_id = KeyIdHex(ca.certificate);
    for (int nid : kCertIdDigests) {
      const EVP_MD* md = EVP_get_digestbynid(nid);
      unsigned char name[EVP_MAX_MD_SIZE], key[EVP_MAX_MD_SIZE];
      unsigned int name_length = 0, key_length = 0;
      // issuerNameHash covers the DER of the issuer's subject, issuerKeyHash the value of its
      // subjectPublicKey BIT STRING (RFC 6960 §4.1.1), which X509_pubkey_digest hashes.
      if (md == nullptr ||
          X509_NAME_digest(X509_get_subject_name(ca.certificate.get()), md, name, &name_length) !=
              1 ||
          X509_pubkey_digest(ca.certificate.get(), md, key, &key_length) != 1) {
        return std::unexpected(
            ossl::ErrorFromQueue("hashing issuing CA " + ca.certificate.SubjectName()));
      }
      issuer->hashes.push_back({nid, std::string(reinterpret_cast<char*>(name), name_length),
                                std::string(reinterpret_cast<char*>(key), key_length)});
    }
    for (const auto& signer : checked) {
      if (signer->signer.issuer == &ca) issuer->signer = signer;
    }
    responder->issuers_.push_back(std::move(issuer));
  }
  return responder;
}

Result<std::shared_ptr<const OcspResponder::Signer>> OcspResponder::CurrentSigner(Issuer& issuer) {
  system_clock::time_point now = clock_.Now();
  {
    std::lock_guard lock(signers_mutex_);
    if (!issuer.signer || !renew_ ||
        !OcspSignerNeedsRenewal(issuer.signer->signer.certificate, now)) {
      return issuer.signer;
    }
    if (now < issuer.next_renewal) {
      if (now < issuer.signer->signer.certificate.NotAfter()) return issuer.signer;
      return std::unexpected(Unavailable("the OCSP signer of " +
                                         issuer.ca->certificate.SubjectName() +
                                         " has expired and its renewal failed; retrying soon"));
    }
  }
  return Renew(issuer);
}

Result<std::shared_ptr<const OcspResponder::Signer>> OcspResponder::Renew(Issuer& issuer) {
  std::shared_ptr<const Signer> current;
  {
    std::lock_guard lock(signers_mutex_);
    current = issuer.signer;
  }
  bool expired = clock_.Now() >= current->signer.certificate.NotAfter();
  // While the old signer is valid, a request that finds a renewal under way signs with it.
  std::unique_lock renewing(renew_mutex_, std::defer_lock);
  if (expired) {
    renewing.lock();
  } else if (!renewing.try_lock()) {
    return current;
  }
  {
    // Another request may have renewed it while this one waited.
    std::lock_guard lock(signers_mutex_);
    if (issuer.signer != current) return issuer.signer;
  }
  auto renewed = [&]() -> Result<std::shared_ptr<const Signer>> {
    DEVID_ASSIGN_OR_RETURN(OcspSigner fresh, renew_(*issuer.ca));
    if (fresh.issuer != issuer.ca) {
      return std::unexpected(InvalidArgument("the renewed signer is for another CA"));
    }
    DEVID_ASSIGN_OR_RETURN(std::shared_ptr<const Signer> made, MakeSigner(std::move(fresh)));
    if (OcspSignerNeedsRenewal(made->signer.certificate, clock_.Now())) {
      return std::unexpected(FailedPrecondition("the renewed signer is due for renewal itself"));
    }
    return made;
  }();
  std::lock_guard lock(signers_mutex_);
  if (renewed) {
    issuer.signer = *renewed;
    return issuer.signer;
  }
  issuer.next_renewal = clock_.Now() + options_.renewal_retry;
  if (!expired) return current;
  return std::unexpected(Unavailable("renewing the expired OCSP signer of " +
                                     issuer.ca->certificate.SubjectName() + ": " +
                                     renewed.error().message()));
}

std::optional<OcspAnswer> OcspResponder::RespondCached(std::string_view request_der) {
  system_clock::time_point now = clock_.Now();
  std::shared_lock lock(cache_mutex_);
  if (now - version_read_at_ > options_.version_max_age) return std::nullopt;
  auto it = cache_.find(std::string(request_der));
  if (it == cache_.end()) return std::nullopt;
  const Cached& cached = *it->second;
  if (cached.version != version_ || now >= cached.refresh_at) return std::nullopt;
  return cached.answer;
}

OcspAnswer OcspResponder::Respond(std::string_view request_der) {
  std::shared_ptr<const Cached> cached;
  {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(std::string(request_der));
    if (it != cache_.end()) cached = it->second;
  }
  system_clock::time_point read_at = clock_.Now();
  auto version = registry_.RevocationVersion();
  if (!version) {
    return StatusOnly(version.error().code() == ErrorCode::kUnavailable
                          ? OcspResponseStatus::kTryLater
                          : OcspResponseStatus::kInternalError,
                      "reading the revocation version: " + version.error().message());
  }
  {
    // Reads that started later saw the same version or a newer one: keep the latest start.
    std::unique_lock lock(cache_mutex_);
    if (read_at >= version_read_at_) {
      version_ = *version;
      version_read_at_ = read_at;
    }
  }
  if (cached && cached->version == *version && clock_.Now() < cached->refresh_at) {
    return cached->answer;
  }
  auto answer = Answer(request_der, cached, *version);
  if (!answer) {
    switch (answer.error().code()) {
      case ErrorCode::kInvalidArgument:
        return StatusOnly(OcspResponseStatus::kMalformedRequest, answer.error().message());
      case ErrorCode::kPermissionDenied:
        return StatusOnly(OcspResponseStatus::kUnauthorized, answer.error().message());
      case ErrorCode::kUnavailable:
        return StatusOnly(OcspResponseStatus::kTryLater, answer.error().message());
      default:
        return StatusOnly(OcspResponseStatus::kInternalError, answer.error().message());
    }
  }
  return std::move(*answer);
}

// Answer parses, looks up and signs. kInvalidArgument = malformedRequest, kPermissionDenied =
// unauthorized.
Result<OcspAnswer> OcspResponder::Answer(std::string_view request_der,
                                         const std::shared_ptr<const Cached>& cached,
                                         int64_t version) {
  const auto* p = reinterpret_cast<const unsigned char*>(request_der.data());
  const auto* end = p + request_der.size();
  ossl::UniquePtr<OCSP_REQUEST> request(
      d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(request_der.size())));
  ERR_clear_error();
  if (!request || p != end) return std::unexpected(InvalidArgument("not a DER OCSPRequest"));
  int count = OCSP_request_onereq_count(request.get());
  if (count <= 0 || static_cast<size_t>(count) > options_.max_certificates) {
    return std::unexpected(
        InvalidArgument("the request asks about " + std::to_string(count) + " certificates; 1 to " +
                        std::to_string(options_.max_certificates) + " are answered"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string nonce, NonceExtension(request.get()));

  Issuer* issuer = nullptr;
  std::vector<Query> queries;
  for (int i = 0; i < count; ++i) {
    OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(request.get(), i));
    ASN1_OCTET_STRING* name_hash = nullptr;
    ASN1_OCTET_STRING* key_hash = nullptr;
    ASN1_OBJECT* md = nullptr;
    ASN1_INTEGER* serial = nullptr;
    OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, id);
    int nid = OBJ_obj2nid(md);
    std::string_view name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name_hash)),
                          static_cast<size_t>(ASN1_STRING_length(name_hash)));
    std::string_view key(reinterpret_cast<const char*>(ASN1_STRING_get0_data(key_hash)),
                         static_cast<size_t>(ASN1_STRING_length(key_hash)));
    Issuer* match = nullptr;
    for (const auto& candidate : issuers_) {
      for (const Issuer::Hashes& hashes : candidate->hashes) {
        if (hashes.nid == nid && hashes.name_hash == name && hashes.key_hash == key) {
          match = candidate.get();
        }
      }
    }
    // RFC 6960 §2.3: unauthorized when the server cannot answer authoritatively for the
    // certificate. One response has one signer, and a delegated signer speaks only for its own
    // CA (§4.2.2.2), so a request mixing CAs is unauthorized as well.
    if (match == nullptr) {
      return std::unexpected(PermissionDenied("the request names an issuer that is not ours"));
    }
    if (issuer != nullptr && issuer != match) {
      return std::unexpected(PermissionDenied("the request names two issuing CAs"));
    }
    issuer = match;
    Query query;
    DEVID_ASSIGN_OR_RETURN(
        query.cert_id_der,
        der::Encode(i2d_OCSP_CERTID, static_cast<const OCSP_CERTID*>(id), "a CertID"));
    ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
    if (!bn) return std::unexpected(ossl::ErrorFromQueue("reading a CertID serial"));
    char* hex = BN_bn2hex(bn.get());
    if (hex == nullptr) return std::unexpected(ossl::ErrorFromQueue("reading a CertID serial"));
    query.serial_hex = hex;
    OPENSSL_free(hex);
    queries.push_back(std::move(query));
  }

  for (Query& query : queries) {
    registry::CertificateFilter filter{.serial = query.serial_hex,
                                       .issuer_key_id = issuer->key_id,
                                       .source = registry::CertificateSource::kIssued};
    auto page = registry_.QueryCertificates(filter, {.max_items = 1});
    if (!page) {
      return std::unexpected(page.error().WithContext("looking up serial " + query.serial_hex));
    }
    if (page->items.empty()) continue;  // unknown: ours, but not in the inventory
    const registry::CertificateRecord& record = page->items.front();
    query.status = record.revoked ? CertStatus::kRevoked : CertStatus::kGood;
    query.revoked_at = record.revoked_at;
    query.reason = record.revocation_reason;
  }

  bool cacheable =
      nonce.empty() && queries.size() == 1 && queries.front().status != CertStatus::kUnknown;
  system_clock::time_point now = clock_.Now();
  // The revocation version moved, but maybe not for this certificate: keep the signed response.
  if (cacheable && cached && now < cached->refresh_at && cached->status == queries[0].status &&
      cached->revoked_at == queries[0].revoked_at && cached->reason == queries[0].reason) {
    auto entry = std::make_shared<Cached>(*cached);
    entry->version = version;
    OcspAnswer answer = entry->answer;
    Store(std::string(request_der), std::move(entry));
    return answer;
  }
  DEVID_ASSIGN_OR_RETURN(std::shared_ptr<const Signer> signer, CurrentSigner(*issuer));
  if (!signer) {
    return std::unexpected(PermissionDenied("issuing CA " + issuer->ca->certificate.SubjectName() +
                                            " has no OCSP signer"));
  }
  DEVID_ASSIGN_OR_RETURN(OcspAnswer answer, Sign(*signer, queries, nonce));
  if (cacheable) {
    auto entry = std::make_shared<Cached>();
    entry->answer = answer;
    entry->version = version;
    entry->refresh_at = now + options_.validity / 2;
    entry->status = queries[0].status;
    entry->revoked_at = queries[0].revoked_at;
    entry->reason = queries[0].reason;
    Store(std::string(request_der), std::move(entry));
  }
  return answer;
}

Result<OcspAnswer> OcspResponder::Sign(const Signer& signer, const std::vector<Query>& queries,
                                       const std::string& nonce_extension) {
  system_clock::time_point now = clock_.Now();
  system_clock::time_point next_update = now + options_.validity;
  DEVID_ASSIGN_OR_RETURN(std::string now_der, GeneralizedTimeDer(now));
  DEVID_ASSIGN_OR_RETURN(std::string next_der, GeneralizedTimeDer(next_update));

  std::string responses;
  for (const Query& query : queries) {
    // CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
    // unknown [2] IMPLICIT UnknownInfo } (RFC 6960 §4.2.1).
    std::string status;
    switch (query.status) {
      case CertStatus::kGood:
        status = der::Tlv(0, V_ASN1_CONTEXT_SPECIFIC, false, "");
        break;
      case CertStatus::kUnknown:
        status = der::Tlv(2, V_ASN1_CONTEXT_SPECIFIC, false, "");
        break;
      case CertStatus::kRevoked: {
        DEVID_ASSIGN_OR_RETURN(std::string revoked_info, GeneralizedTimeDer(query.revoked_at));
        // revocationReason [0] EXPLICIT CRLReason, left out for unspecified as on the CRL.
        if (query.reason > 0 && query.reason <= 10 && query.reason != 7) {
          revoked_info += der::Explicit(0, Enumerated(query.reason));
        }
        status = der::Tlv(1, V_ASN1_CONTEXT_SPECIFIC, true, revoked_info);
        break;
      }
    }
    // SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT }.
    responses += der::Sequence(query.cert_id_der + status + now_der + der::Explicit(0, next_der));
  }
  // ResponseData ::= SEQUENCE { version [0] DEFAULT v1 (left out), responderID, producedAt,
  // responses, responseExtensions [1] EXPLICIT }; the nonce is echoed (RFC 8954 §2.1).
  std::string data = signer.responder_id + now_der + der::Sequence(responses);
  if (!nonce_extension.empty()) data += der::Explicit(1, der::Sequence(nonce_extension));
  auto basic = SignStructure(der::Sequence(data), *signer.signer.key, signer.certs);
  if (!basic) return std::unexpected(basic.error().WithContext("signing an OCSP response"));

  DEVID_ASSIGN_OR_RETURN(
      std::string type_der,
      der::Encode(i2d_ASN1_OBJECT, OBJ_nid2obj(NID_id_pkix_OCSP_basic), "id-pkix-ocsp-basic"));
  // OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT SEQUENCE {
  // responseType, response OCTET STRING } }.
  std::string bytes =
      der::Sequence(type_der + der::Tlv(V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, *basic));
  OcspAnswer answer;
  answer.status = OcspResponseStatus::kSuccessful;
  answer.der = der::Sequence(Enumerated(0) + der::Explicit(0, bytes));
  answer.produced_at = now;
  answer.next_update = next_update;
  answer.etag = EtagOf(answer.der);
  return answer;
}

void OcspResponder::Store(std::string request_der, std::shared_ptr<const Cached> entry) {
  std::unique_lock lock(cache_mutex_);
  if (cache_.size() >= options_.max_cached && !cache_.contains(request_der)) cache_.clear();
  cache_[std::move(request_der)] = std::move(entry);
}

}  // namespace devid::ca
