#include "ca/authority.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "base/hex.h"
#include "ca/certificate_signer.h"
#include "ossl/error.h"
#include "pki/public_key_info.h"

namespace devid::ca {
namespace {

using std::chrono::system_clock;

// CheckSubjectKey refuses keys too weak to certify: RSA under 2048 bits (NIST SP 800-131A) and
// curves other than P-256, P-384 and Ed25519 (P-192 among them).
Status CheckSubjectKey(const EVP_PKEY* key) {
  if (key == nullptr) return std::unexpected(InvalidArgument("the request has no public key"));
  if (EVP_PKEY_is_a(key, "RSA")) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits < 2048 || bits > 8192) {
      return std::unexpected(
          InvalidArgument("RSA key of " + std::to_string(bits) + " bits: want 2048 to 8192"));
    }
    return Ok();
  }
  auto algorithm = keys::AlgorithmOfPublicKey(key);
  if (!algorithm) return std::unexpected(algorithm.error().WithContext("subject key"));
  return Ok();
}

Status SetSerial(X509* x509, Random& random) {
  // RFC 5280 §4.1.2.2: positive, at most 20 octets. 128 random bits, the top one cleared so the
  // DER INTEGER needs no sign octet; a nonzero leading bit keeps the length fixed.
  std::vector<uint8_t> bytes = random.Bytes(16);
  bytes[0] = static_cast<uint8_t>((bytes[0] & 0x7f) | 0x40);
  ossl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x509)) == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("setting a certificate serial"));
  }
  return Ok();
}

Status AddExtension(X509* x509, X509V3_CTX* ctx, int nid, const std::string& value) {
  ossl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(x509, ext.get(), -1) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("adding extension " + std::string(OBJ_nid2sn(nid)) + "=" + value));
  }
  return Ok();
}

Status AddOcspNoCheck(X509* x509) {
  // id-pkix-ocsp-nocheck's value is NULL (RFC 6960 §4.2.2.2.1).
  ASN1_NULL* null_value = ASN1_NULL_new();
  int ok = null_value != nullptr && X509_add1_ext_i2d(x509, NID_id_pkix_OCSP_noCheck, null_value, 0,
                                                      X509V3_ADD_DEFAULT) == 1;
  ASN1_NULL_free(null_value);
  if (!ok) return std::unexpected(ossl::ErrorFromQueue("adding ocsp-nocheck"));
  return Ok();
}

bool ValidUrlText(std::string_view text) {
  // X509V3 configuration strings treat ',' as a separator; URLs we write must not contain one.
  return text.find(',') == std::string_view::npos && text.find('\n') == std::string_view::npos;
}

}  // namespace

namespace {

// KeyIdentifierHex renders a key identifier as lowercase hex ("" for none).
std::string KeyIdentifierHex(const ASN1_OCTET_STRING* id) {
  ERR_clear_error();  // computing the cached extensions may leave benign entries
  if (id == nullptr) return "";
  return HexEncode(std::span<const uint8_t>(ASN1_STRING_get0_data(id),
                                            static_cast<size_t>(ASN1_STRING_length(id))));
}

}  // namespace

std::string KeyIdHex(const pki::Certificate& certificate) {
  return KeyIdentifierHex(X509_get0_subject_key_id(certificate.get()));
}

std::string AuthorityKeyIdHex(const pki::Certificate& certificate) {
  return KeyIdentifierHex(X509_get0_authority_key_id(certificate.get()));
}

namespace {

// Build makes the certificate IssueCertificate describes, ready for signing.
Result<ossl::UniquePtr<X509>> Build(const Profile& profile, const CertificateRequest& request,
                                    const pki::Certificate* issuer,
                                    const AuthorityOptions& options, const Clock& clock,
                                    Random& random) {
  DEVID_TRY(CheckSubjectKey(request.public_key));
  if (profile.requires_common_name && request.common_name.empty()) {
    return std::unexpected(
        InvalidArgument("profile " + std::string(profile.name) + " needs a subject common name"));
  }
  if (request.common_name.size() > 64) {
    return std::unexpected(InvalidArgument("subject common name longer than 64 characters"));
  }
  if (profile.requires_subject_alt_name && request.dns_names.empty() &&
      request.ip_addresses.empty()) {
    return std::unexpected(InvalidArgument("profile " + std::string(profile.name) +
                                           " needs at least one DNS name or IP address"));
  }
  if (!ValidUrlText(options.base_url)) {
    return std::unexpected(InvalidArgument("CA base URL contains ',' or a newline"));
  }
  for (const std::string& dns : request.dns_names) {
    if (dns.empty() || dns.find_first_of(",: \n") != std::string::npos) {
      return std::unexpected(InvalidArgument("DNS name \"" + dns + "\" is not allowed"));
    }
  }
  for (const std::string& ip : request.ip_addresses) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, ip.c_str(), buf) != 1 && ::inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return std::unexpected(InvalidArgument("\"" + ip + "\" is not an IP address"));
    }
  }

  ossl::UniquePtr<X509> x509(X509_new());
  if (!x509 || X509_set_version(x509.get(), X509_VERSION_3) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating a certificate"));
  }
  DEVID_TRY(SetSerial(x509.get(), random));

  system_clock::time_point now = clock.Now();
  system_clock::time_point not_after = now + profile.validity;
  if (request.validity && now + *request.validity < not_after) not_after = now + *request.validity;
  if (issuer != nullptr) not_after = std::min(not_after, issuer->NotAfter());
  if (ASN1_TIME_set(X509_getm_notBefore(x509.get()),
                    system_clock::to_time_t(now - options.backdate)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x509.get()), system_clock::to_time_t(not_after)) ==
          nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("setting certificate validity"));
  }

  X509_NAME* subject = X509_get_subject_name(x509.get());
  if (!request.common_name.empty() &&
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(request.common_name.data()),
                                 static_cast<int>(request.common_name.size()), -1, 0) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("setting the subject name", ErrorCode::kInvalidArgument));
  }
  X509* issuer_x509 = issuer != nullptr ? issuer->get() : x509.get();
  if (X509_set_issuer_name(x509.get(), X509_get_subject_name(issuer_x509)) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating a certificate"));
  }
  if (request.public_key_info != nullptr) {
    DEVID_TRY(pki::CopyPublicKeyInfo(request.public_key_info, X509_get_X509_PUBKEY(x509.get())));
  } else if (X509_set_pubkey(x509.get(), const_cast<EVP_PKEY*>(request.public_key)) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating a certificate"));
  }

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_x509, x509.get(), nullptr, nullptr, 0);
  std::string basic = profile.ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (profile.ca && profile.path_length >= 0) {
    basic += ",pathlen:" + std::to_string(profile.path_length);
  }
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_basic_constraints, basic));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_key_usage, std::string(profile.key_usage)));
  if (!profile.extended_key_usage.empty()) {
    DEVID_TRY(
        AddExtension(x509.get(), &ctx, NID_ext_key_usage, std::string(profile.extended_key_usage)));
  }
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_subject_key_identifier, "hash"));
  // RFC 5280 §4.2.1.1: AKI in every certificate but a self-signed root, where it may be omitted.
  if (issuer != nullptr) {
    DEVID_TRY(AddExtension(x509.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  }
  std::string san;
  for (const std::string& dns : request.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : request.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  // RFC 5280 §4.2.1.6: with an empty subject the subjectAltName extension is critical.
  if (!san.empty() && request.common_name.empty()) san = "critical," + san;
  if (!san.empty()) DEVID_TRY(AddExtension(x509.get(), &ctx, NID_subject_alt_name, san));
  if (profile.revocation_pointers && !options.base_url.empty() && issuer != nullptr) {
    std::string issuer_id = KeyIdHex(*issuer);
    // RFC 5280 §4.2.1.13 (CRL distribution points) and §4.2.2.1 (authority information access).
    DEVID_TRY(AddExtension(x509.get(), &ctx, NID_crl_distribution_points,
                           "URI:" + options.base_url + "/crl/" + issuer_id + ".crl"));
    DEVID_TRY(AddExtension(x509.get(), &ctx, NID_info_access,
                           "OCSP;URI:" + options.base_url + "/ocsp,caIssuers;URI:" +
                               options.base_url + "/ca/" + issuer_id + ".cer"));
  }
  if (profile.ocsp_no_check) DEVID_TRY(AddOcspNoCheck(x509.get()));
  return x509;
}

// EndEntityProfile finds a profile Authority may issue under.
Result<const Profile*> EndEntityProfile(std::string_view profile_name) {
  DEVID_ASSIGN_OR_RETURN(const Profile* profile, FindProfile(profile_name));
  if (profile->ca) {
    return std::unexpected(InvalidArgument("profile " + std::string(profile_name) +
                                           " makes CA certificates; use devid ca"));
  }
  return profile;
}

}  // namespace

Result<pki::Certificate> IssueCertificate(const Profile& profile, const CertificateRequest& request,
                                          const pki::Certificate* issuer, const keys::Key& signer,
                                          const AuthorityOptions& options, const Clock& clock,
                                          Random& random) {
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<X509> x509,
                         Build(profile, request, issuer, options, clock, random));
  return SignCertificate(x509.get(), signer);
}

Result<std::unique_ptr<Authority>> Authority::Create(AuthorityOptions options,
                                                     std::vector<pki::Certificate> roots,
                                                     std::vector<IssuingCa> issuers,
                                                     const Clock& clock, Random& random) {
  if (roots.empty()) return std::unexpected(InvalidArgument("the CA has no root certificate"));
  if (issuers.empty()) return std::unexpected(InvalidArgument("the CA has no issuing CA"));
  std::unique_ptr<Authority> authority(
      new Authority(std::move(options), std::move(roots), std::move(issuers), clock, random));
  for (const IssuingCa& issuer : authority->issuers_) {
    if (EVP_PKEY_eq(X509_get0_pubkey(issuer.certificate.get()), issuer.key->public_key()) != 1) {
      ERR_clear_error();
      return std::unexpected(InvalidArgument("issuing CA " + issuer.certificate.SubjectName() +
                                             ": key " + issuer.key->uri() +
                                             " does not match its certificate"));
    }
    if (auto chained = authority->Verify(issuer.certificate); !chained) {
      return std::unexpected(chained.error().WithContext(
          "issuing CA " + issuer.certificate.SubjectName() + " does not chain to a root"));
    }
  }
  return authority;
}

Result<const IssuingCa*> Authority::CurrentIssuer() const {
  system_clock::time_point now = clock_->Now();
  for (auto it = issuers_.rbegin(); it != issuers_.rend(); ++it) {
    if (it->certificate.NotBefore() <= now + options_.backdate &&
        now < it->certificate.NotAfter()) {
      return &*it;
    }
  }
  return std::unexpected(FailedPrecondition("no issuing CA is valid now"));
}

Result<pki::Certificate> Authority::Issue(std::string_view profile_name,
                                          const CertificateRequest& request) const {
  DEVID_ASSIGN_OR_RETURN(const Profile* profile, EndEntityProfile(profile_name));
  DEVID_ASSIGN_OR_RETURN(const IssuingCa* issuer, CurrentIssuer());
  return IssueCertificate(*profile, request, &issuer->certificate, *issuer->key, options_, *clock_,
                          *random_);
}

Result<pki::Certificate> Authority::IssueUnparsed(std::string_view profile_name,
                                                  const CertificateRequest& request) const {
  DEVID_ASSIGN_OR_RETURN(const Profile* profile, EndEntityProfile(profile_name));
  DEVID_ASSIGN_OR_RETURN(const IssuingCa* issuer, CurrentIssuer());
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<X509> x509, Build(*profile, request, &issuer->certificate,
                                                           options_, *clock_, *random_));
  DEVID_TRY(SignCertificateInPlace(x509.get(), *issuer->key));
  return pki::Certificate::Adopt(std::move(x509));
}

Result<pki::Certificate> Authority::IssueWith(const IssuingCa& issuer,
                                              std::string_view profile_name,
                                              const CertificateRequest& request) const {
  DEVID_ASSIGN_OR_RETURN(const Profile* profile, EndEntityProfile(profile_name));
  if (clock_->Now() >= issuer.certificate.NotAfter()) {
    return std::unexpected(
        FailedPrecondition("issuing CA " + issuer.certificate.SubjectName() + " has expired"));
  }
  return IssueCertificate(*profile, request, &issuer.certificate, *issuer.key, options_, *clock_,
                          *random_);
}

Status Authority::Verify(const pki::Certificate& certificate, int purpose) const {
  ossl::UniquePtr<X509_STORE> store(X509_STORE_new());
  ossl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  auto free_untrusted = [&] { sk_X509_free(untrusted); };  // the stack borrows; X509s stay ours
  if (!store || !ctx || untrusted == nullptr) {
    free_untrusted();
    return std::unexpected(ossl::ErrorFromQueue("preparing certificate verification"));
  }
  for (const pki::Certificate& root : roots_) X509_STORE_add_cert(store.get(), root.get());
  for (const IssuingCa& issuer : issuers_) sk_X509_push(untrusted, issuer.certificate.get());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), certificate.get(), untrusted) != 1) {
    free_untrusted();
    return std::unexpected(ossl::ErrorFromQueue("preparing certificate verification"));
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_time(param, system_clock::to_time_t(clock_->Now()));
  if (purpose != 0) X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  free_untrusted();
  ERR_clear_error();
  if (ok != 1) {
    return std::unexpected(
        Unauthenticated("certificate " + certificate.SubjectName() +
                        " does not verify: " + X509_verify_cert_error_string(error)));
  }
  return Ok();
}

const pki::Certificate* Authority::IssuerOf(const pki::Certificate& certificate) const {
  for (const IssuingCa& issuer : issuers_) {
    if (X509_check_issued(issuer.certificate.get(), certificate.get()) == X509_V_OK) {
      return &issuer.certificate;
    }
  }
  return nullptr;
}

std::string Authority::ChainPem(const pki::Certificate& certificate) const {
  std::string pem = certificate.ToPem();
  if (const pki::Certificate* issuer = IssuerOf(certificate)) pem += issuer->ToPem();
  return pem;
}

std::string Authority::TrustBundlePem() const {
  std::string pem;
  for (const pki::Certificate& root : roots_) pem += root.ToPem();
  return pem;
}

}  // namespace devid::ca
