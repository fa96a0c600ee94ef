#include "ca/development_pki.h"

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <chrono>

#include "ossl/error.h"

namespace devid::ca {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr auto kBackdate = minutes(5);  // tolerate device clocks a little behind ours

Status SetSerial(X509* x509, Random& random) {
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; 128 random bits with the top bit cleared.
  std::vector<uint8_t> bytes = random.Bytes(16);
  bytes[0] &= 0x7f;
  ossl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x509)) == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("setting a certificate serial"));
  }
  return Ok();
}

Status SetValidity(X509* x509, std::chrono::system_clock::time_point now,
                   std::chrono::system_clock::duration lifetime) {
  time_t not_before = std::chrono::system_clock::to_time_t(now - kBackdate);
  time_t not_after = std::chrono::system_clock::to_time_t(now + lifetime);
  if (ASN1_TIME_set(X509_getm_notBefore(x509), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x509), not_after) == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("setting certificate validity"));
  }
  return Ok();
}

Status SetCommonName(X509* x509, std::string_view common_name) {
  X509_NAME* name = X509_get_subject_name(x509);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting the subject name"));
  }
  return Ok();
}

Status AddExtension(X509* x509, X509V3_CTX* ctx, int nid, const std::string& value) {
  ossl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(x509, ext.get(), -1) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("adding extension " + value));
  }
  return Ok();
}

}  // namespace

Result<DevelopmentPki> DevelopmentPki::Create(std::string_view common_name, Clock& clock,
                                              Random& random) {
  DEVID_ASSIGN_OR_RETURN(pki::PrivateKey key, pki::PrivateKey::GenerateEcP256());
  ossl::UniquePtr<X509> x509(X509_new());
  if (!x509 || X509_set_version(x509.get(), X509_VERSION_3) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating the root certificate"));
  }
  DEVID_TRY(SetSerial(x509.get(), random));
  DEVID_TRY(SetValidity(x509.get(), clock.Now(), hours(24 * 3650)));
  DEVID_TRY(SetCommonName(x509.get(), common_name));
  if (X509_set_issuer_name(x509.get(), X509_get_subject_name(x509.get())) != 1 ||
      X509_set_pubkey(x509.get(), key.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating the root certificate"));
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x509.get(), x509.get(), nullptr, nullptr, 0);
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_subject_key_identifier, "hash"));
  if (X509_sign(x509.get(), key.get(), EVP_sha256()) == 0) {
    return std::unexpected(ossl::ErrorFromQueue("signing the root certificate"));
  }
  return DevelopmentPki(pki::Certificate::Adopt(std::move(x509)), std::move(key), clock, random);
}

Result<DevelopmentPki> DevelopmentPki::Load(std::string_view certificate_pem,
                                            std::string_view key_pem, Clock& clock,
                                            Random& random) {
  DEVID_ASSIGN_OR_RETURN(pki::Certificate root, pki::Certificate::FromPem(certificate_pem));
  DEVID_ASSIGN_OR_RETURN(pki::PrivateKey key, pki::PrivateKey::FromPem(key_pem));
  if (X509_check_private_key(root.get(), key.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("loading the development CA: key does not match",
                                                ErrorCode::kInvalidArgument));
  }
  return DevelopmentPki(std::move(root), std::move(key), clock, random);
}

Result<TlsIdentity> DevelopmentPki::IssueServer(const std::vector<std::string>& dns_names,
                                                const std::vector<std::string>& ip_addresses) {
  std::string cn = dns_names.empty() ? (ip_addresses.empty() ? "server" : ip_addresses[0])
                                     : dns_names[0];
  return Issue(cn, /*server=*/true, dns_names, ip_addresses);
}

Result<TlsIdentity> DevelopmentPki::IssueClient(std::string_view common_name) {
  return Issue(common_name, /*server=*/false, {}, {});
}

Result<TlsIdentity> DevelopmentPki::Issue(std::string_view common_name, bool server,
                                          const std::vector<std::string>& dns_names,
                                          const std::vector<std::string>& ip_addresses) {
  DEVID_ASSIGN_OR_RETURN(pki::PrivateKey key, pki::PrivateKey::GenerateEcP256());
  ossl::UniquePtr<X509> x509(X509_new());
  if (!x509 || X509_set_version(x509.get(), X509_VERSION_3) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating a certificate"));
  }
  DEVID_TRY(SetSerial(x509.get(), *random_));
  DEVID_TRY(SetValidity(x509.get(), clock_->Now(), hours(24 * 365)));
  DEVID_TRY(SetCommonName(x509.get(), common_name));
  if (X509_set_issuer_name(x509.get(), X509_get_subject_name(root_.get())) != 1 ||
      X509_set_pubkey(x509.get(), key.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("creating a certificate"));
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, root_.get(), x509.get(), nullptr, nullptr, 0);
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_ext_key_usage, server ? "serverAuth" : "clientAuth"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_subject_key_identifier, "hash"));
  DEVID_TRY(AddExtension(x509.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  std::string san;
  for (const std::string& dns : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) DEVID_TRY(AddExtension(x509.get(), &ctx, NID_subject_alt_name, san));
  if (X509_sign(x509.get(), root_key_.get(), EVP_sha256()) == 0) {
    return std::unexpected(ossl::ErrorFromQueue("signing a certificate"));
  }
  pki::Certificate leaf = pki::Certificate::Adopt(std::move(x509));
  DEVID_ASSIGN_OR_RETURN(std::string key_pem, key.ToPem());
  return TlsIdentity{leaf.ToPem(), std::move(key_pem)};
}

}  // namespace devid::ca
