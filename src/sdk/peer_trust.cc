#include "devid/peer_trust.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <utility>

#include "base/file.h"
#include "base/hex.h"
#include "ossl/error.h"
#include "ossl/revocation_handles.h"
#include "ossl/unique_ptr.h"
#include "pki/chain_verifier.h"
#include "sdk/https_client.h"

namespace devid::sdk {
namespace {

using std::chrono::system_clock;

constexpr char kCacheFile[] = "peer-trust.pem";
// The first line of the cache; the PEM reader skips it.
constexpr std::string_view kHeader = "# devid peer trust, fetched at ";

struct X509InfoStackFree {
  void operator()(STACK_OF(X509_INFO) * p) const { sk_X509_INFO_pop_free(p, X509_INFO_free); }
};

Result<ossl::UniquePtr<X509_CRL>> ParseCrl(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl || p != reinterpret_cast<const unsigned char*>(der.data() + der.size())) {
    return std::unexpected(ossl::ErrorFromQueue("parsing a CRL", ErrorCode::kFailedPrecondition));
  }
  return crl;
}

system_clock::time_point ToTimePoint(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return system_clock::from_time_t(timegm(&tm));
}

std::string NameOf(X509_NAME* name) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

bool IsSelfSigned(const pki::Certificate& certificate) {
  return X509_check_issued(certificate.get(), certificate.get()) == X509_V_OK;
}

// SignedBy tells whether ca signed crl: same name, and the signature verifies with ca's key.
bool SignedBy(X509_CRL* crl, const pki::Certificate& ca) {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca.get())) != 0) return false;
  bool verified = X509_CRL_verify(crl, X509_get0_pubkey(ca.get())) == 1;
  ERR_clear_error();
  return verified;
}

std::string KeyIdHex(const pki::Certificate& certificate) {
  const ASN1_OCTET_STRING* id = X509_get0_subject_key_id(certificate.get());
  if (id == nullptr) return "";
  return HexEncode(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(id)),
                                    static_cast<size_t>(ASN1_STRING_length(id))));
}

struct ParsedSet {
  std::vector<pki::Certificate> roots;
  std::vector<pki::Certificate> intermediates;
};

// CheckSet is what a cached set must satisfy whenever it is loaded or replaced: roots, CAs that
// chain to them, and for every CA a CRL that CA signed (a CRL we cannot attribute is tampered or
// foreign). With current set, each CRL must also be valid at now (RFC 5280 §5.1.2.4-5).
Result<ParsedSet> CheckSet(const std::vector<pki::Certificate>& cas,
                           const std::vector<std::string>& crls_der, system_clock::time_point now,
                           bool current) {
  ParsedSet set;
  for (const pki::Certificate& ca : cas) {
    (IsSelfSigned(ca) ? set.roots : set.intermediates).push_back(ca.Clone());
  }
  if (set.roots.empty()) {
    return std::unexpected(FailedPrecondition("the CA certificates hold no self-signed root"));
  }
  for (const pki::Certificate& ca : set.intermediates) {
    auto path = pki::VerifyChain(ca, set.intermediates, set.roots, {}, now,
                                 {.purpose = 0, .check_revocation = false});
    if (!path) {
      return std::unexpected(FailedPrecondition(
          "CA " + ca.SubjectName() + " does not chain to a root: " + path.error().message()));
    }
  }
  std::vector<ossl::UniquePtr<X509_CRL>> crls;
  for (const std::string& der : crls_der) {
    DEVID_ASSIGN_OR_RETURN(auto crl, ParseCrl(der));
    bool attributed = false;
    for (const pki::Certificate& ca : cas) attributed = attributed || SignedBy(crl.get(), ca);
    if (!attributed) {
      return std::unexpected(FailedPrecondition("the CRL of " +
                                                NameOf(X509_CRL_get_issuer(crl.get())) +
                                                " is not signed by any cached CA certificate"));
    }
    if (current) {
      system_clock::time_point this_update = ToTimePoint(X509_CRL_get0_lastUpdate(crl.get()));
      system_clock::time_point next_update = ToTimePoint(X509_CRL_get0_nextUpdate(crl.get()));
      // A minute of clock difference with devid is tolerated on thisUpdate only.
      if (this_update > now + std::chrono::minutes(1) || next_update <= now) {
        return std::unexpected(
            FailedPrecondition("the CRL of " + NameOf(X509_CRL_get_issuer(crl.get())) +
                               " is not current (thisUpdate " + FormatUtc(this_update) +
                               ", nextUpdate " + FormatUtc(next_update) + ")"));
      }
    }
    crls.push_back(std::move(crl));
  }
  for (const pki::Certificate& ca : cas) {
    bool covered = false;
    for (const auto& crl : crls) covered = covered || SignedBy(crl.get(), ca);
    if (!covered) {
      return std::unexpected(FailedPrecondition("no CRL signed by CA " + ca.SubjectName()));
    }
  }
  return set;
}

}  // namespace

std::string PeerTrust::cache_file() const { return options_.directory + "/" + kCacheFile; }

Result<PeerTrust> PeerTrust::Open(PeerTrustOptions options, const Clock& clock) {
  PeerTrust trust(std::move(options), clock);
  std::string path = trust.cache_file();
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return trust;
    return std::unexpected(text.error());
  }
  auto fail = [&](std::string why) {
    return std::unexpected(FailedPrecondition("loading the peer trust cache " + path + ": " + why));
  };
  if (!text->starts_with(kHeader)) return fail("no fetched-at line");
  int64_t fetched = std::atoll(text->c_str() + kHeader.size());
  if (fetched <= 0) return fail("a bad fetched-at line");

  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  std::unique_ptr<STACK_OF(X509_INFO), X509InfoStackFree> infos(
      PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr));
  if (!infos) return fail(ossl::ErrorFromQueue("reading PEM").message());
  std::vector<pki::Certificate> cas;
  std::vector<std::string> crls;
  for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos.get(), i);
    if (info->x509 != nullptr) {
      X509_up_ref(info->x509);
      cas.push_back(pki::Certificate::Adopt(ossl::UniquePtr<X509>(info->x509)));
    }
    if (info->crl != nullptr) {
      unsigned char* der = nullptr;
      int size = i2d_X509_CRL(info->crl, &der);
      if (size <= 0) return fail(ossl::ErrorFromQueue("encoding a CRL").message());
      crls.emplace_back(reinterpret_cast<char*>(der), static_cast<size_t>(size));
      OPENSSL_free(der);
    }
  }
  auto checked = CheckSet(cas, crls, clock.Now(), /*current=*/false);
  if (!checked) return fail(checked.error().message());
  trust.roots_ = std::move(checked->roots);
  trust.intermediates_ = std::move(checked->intermediates);
  trust.crls_der_ = std::move(crls);
  trust.fetched_at_ = system_clock::from_time_t(static_cast<time_t>(fetched));
  return trust;
}

Status PeerTrust::Install(std::vector<pki::Certificate> ca_certificates,
                          std::vector<std::string> crls_der) {
  system_clock::time_point now = clock_->Now();
  auto checked = CheckSet(ca_certificates, crls_der, now, /*current=*/true);
  if (!checked) return std::unexpected(checked.error().WithContext("refreshing peer trust"));
  // No rollback: a CRL older than the cached one from the same CA would un-revoke certificates.
  for (const std::string& cached_der : crls_der_) {
    auto cached = ParseCrl(cached_der);
    if (!cached) continue;
    for (const std::string& der : crls_der) {
      auto fresh = ParseCrl(der);
      if (!fresh) continue;
      if (X509_NAME_cmp(X509_CRL_get_issuer(fresh->get()), X509_CRL_get_issuer(cached->get())) ==
              0 &&
          ToTimePoint(X509_CRL_get0_lastUpdate(fresh->get())) <
              ToTimePoint(X509_CRL_get0_lastUpdate(cached->get()))) {
        return std::unexpected(FailedPrecondition("refreshing peer trust: the CRL of " +
                                                  NameOf(X509_CRL_get_issuer(fresh->get())) +
                                                  " is older than the cached one"));
      }
    }
  }
  std::string text = std::string(kHeader) + std::to_string(system_clock::to_time_t(now)) + "\n";
  for (const pki::Certificate& ca : ca_certificates) text += ca.ToPem();
  for (const std::string& der : crls_der) {
    auto crl = ParseCrl(der);
    ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    if (!crl || PEM_write_bio_X509_CRL(bio.get(), crl->get()) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("refreshing peer trust: encoding a CRL"));
    }
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    text.append(data, static_cast<size_t>(size));
  }
  std::error_code ignored;
  std::filesystem::create_directories(options_.directory, ignored);
  DEVID_TRY(WriteFileAtomically(cache_file(), text, 0644));
  roots_ = std::move(checked->roots);
  intermediates_ = std::move(checked->intermediates);
  crls_der_ = std::move(crls_der);
  fetched_at_ = now;
  return Ok();
}

Status PeerTrust::Refresh(const EstOptions& server) {
  EstClient est(server);
  DEVID_ASSIGN_OR_RETURN(std::vector<pki::Certificate> cas, est.CaCerts());
  std::string action =
      "fetching CRLs from https://" + server.host + ":" + std::to_string(server.port);
  auto client = HttpsClient::Connect(server.host, server.port,
                                     {.trust_bundle_pem = server.trust_bundle_pem,
                                      .server_name = server.server_name,
                                      .timeout = server.timeout});
  if (!client) return std::unexpected(client.error().WithContext(action));
  std::vector<std::string> crls;
  for (const pki::Certificate& ca : cas) {
    std::string target = "/crl/" + KeyIdHex(ca) + ".crl";
    auto response = client->Send("GET", target);
    if (!response) return std::unexpected(response.error().WithContext(action));
    if (response->status != 200) {
      return std::unexpected(Unavailable(action + ": GET " + target + " (" + ca.SubjectName() +
                                         ") answered " + std::to_string(response->status)));
    }
    crls.push_back(std::move(response->body));
  }
  return Install(std::move(cas), std::move(crls));
}

Result<VerifiedPeer> PeerTrust::VerifyPeer(const pki::Certificate& leaf,
                                           std::span<const pki::Certificate> untrusted,
                                           std::string_view expected_name) const {
  std::string who = leaf.SubjectName();
  auto refuse = [&](std::string why) {
    return std::unexpected(Unauthenticated("peer " + who + " refused: " + why));
  };
  if (ca_count() == 0) {
    return refuse("no peer trust is cached in " + options_.directory + " (refresh from devid)");
  }
  system_clock::time_point now = clock_->Now();
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - fetched_at_);
  if (age > options_.max_crl_age) {
    return refuse("the cached CRLs are " + std::to_string(age.count()) +
                  " s old, more than the bound of " + std::to_string(options_.max_crl_age.count()) +
                  " s (refresh from devid)");
  }
  std::vector<pki::Certificate> intermediates;
  for (const pki::Certificate& peer_sent : untrusted) intermediates.push_back(peer_sent.Clone());
  for (const pki::Certificate& ca : intermediates_) intermediates.push_back(ca.Clone());
  // Both peers are device certificates, which devid issues for clientAuth only; the serving peer
  // is therefore held to the same purpose as the connecting one (docs/peers.md).
  auto path = pki::VerifyChain(leaf, intermediates, roots_, crls_der_, now,
                               {.purpose = X509_PURPOSE_SSL_CLIENT, .check_revocation = true});
  if (!path) return refuse(path.error().message());
  std::string name = leaf.SubjectCommonName();
  if (!expected_name.empty() && name != expected_name) {
    return refuse("it is " + name + ", not the expected peer " + std::string(expected_name));
  }
  return VerifiedPeer{.name = name, .serial = leaf.SerialHex()};
}

}  // namespace devid::sdk
