#include "ca/crl.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/der.h"
#include "ca/signed_structure.h"
#include "ossl/error.h"
#include "ossl/revocation_handles.h"
#include "pki/crl_reason.h"

namespace devid::ca {
namespace {

using std::chrono::system_clock;

// TimeDer encodes t as a CRL Time: UTCTime through 2049, GeneralizedTime after (RFC 5280
// §5.1.2.4), which is what ASN1_TIME_set chooses.
Result<std::string> TimeDer(system_clock::time_point t) {
  ossl::UniquePtr<ASN1_TIME> time(ASN1_TIME_set(nullptr, system_clock::to_time_t(t)));
  if (!time) return std::unexpected(ossl::ErrorFromQueue("encoding a CRL time"));
  return der::Encode(i2d_ASN1_TIME, static_cast<const ASN1_TIME*>(time.get()), "a CRL time");
}

Result<std::string> SerialDer(const std::string& hex) {
  BIGNUM* raw = nullptr;
  if (hex.empty() || BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
    BN_free(raw);
    ERR_clear_error();
    return std::unexpected(InvalidArgument("revoked serial \"" + hex + "\" is not hex"));
  }
  ossl::UniquePtr<BIGNUM> bn(raw);
  ossl::UniquePtr<ASN1_INTEGER> integer(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!integer) return std::unexpected(ossl::ErrorFromQueue("encoding a revoked serial"));
  return der::Encode(i2d_ASN1_INTEGER, static_cast<const ASN1_INTEGER*>(integer.get()),
                     "a revoked serial");
}

// ExtensionDer encodes one extension whose value OpenSSL's X509V3 method for nid knows.
Result<std::string> ExtensionDer(int nid, void* value) {
  ossl::UniquePtr<X509_EXTENSION> extension(X509V3_EXT_i2d(nid, 0, value));
  if (!extension) {
    return std::unexpected(
        ossl::ErrorFromQueue("encoding CRL extension " + std::string(OBJ_nid2sn(nid))));
  }
  return der::Encode(i2d_X509_EXTENSION, static_cast<const X509_EXTENSION*>(extension.get()),
                     "a CRL extension");
}

bool WritableReason(int reason) {
  // 7 is unassigned and removeFromCRL (8) belongs to delta CRLs (RFC 5280 §5.3.1). A stored code
  // outside the list is written as unspecified rather than keeping the whole CRL from being made.
  return reason >= 1 && reason <= 10 && reason != 7 && reason != 8;
}

Result<std::string> EntryDer(const RevokedEntry& entry) {
  DEVID_ASSIGN_OR_RETURN(std::string body, SerialDer(entry.serial_hex));
  DEVID_ASSIGN_OR_RETURN(std::string date, TimeDer(entry.revoked_at));
  body += date;
  if (WritableReason(entry.reason)) {
    ossl::UniquePtr<ASN1_ENUMERATED> reason(ASN1_ENUMERATED_new());
    if (!reason || ASN1_ENUMERATED_set(reason.get(), entry.reason) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("encoding a CRL reason"));
    }
    DEVID_ASSIGN_OR_RETURN(std::string extension, ExtensionDer(NID_crl_reason, reason.get()));
    body += der::Sequence(extension);
  }
  return der::Sequence(body);
}

}  // namespace

uint64_t CrlNumber(system_clock::time_point this_update, int64_t revocation_version) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(this_update.time_since_epoch());
  return (static_cast<uint64_t>(seconds.count()) << 32) |
         (static_cast<uint64_t>(revocation_version) & 0xffffffffu);
}

Result<std::string> BuildCrl(const pki::Certificate& issuer, const keys::Key& key,
                             const CrlContent& content) {
  const ASN1_OCTET_STRING* key_id = X509_get0_subject_key_id(issuer.get());
  ERR_clear_error();  // computing the cached extensions may leave benign entries
  if (key_id == nullptr) {
    return std::unexpected(InvalidArgument("CA " + issuer.SubjectName() +
                                           " has no subjectKeyIdentifier to name its CRL by"));
  }

  // TBSCertList (RFC 5280 §5.1): version v2 (1), signature, issuer, thisUpdate, nextUpdate,
  // revokedCertificates (absent when empty, §5.1.2.6), crlExtensions [0].
  std::string tbs = der::Tlv(V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, std::string(1, '\x01'));
  DEVID_ASSIGN_OR_RETURN(std::string algorithm, SignatureAlgorithmDer(key.algorithm()));
  tbs += algorithm;
  DEVID_ASSIGN_OR_RETURN(
      std::string name,
      der::Encode(i2d_X509_NAME, static_cast<const X509_NAME*>(X509_get_subject_name(issuer.get())),
                  "the CRL issuer"));
  tbs += name;
  DEVID_ASSIGN_OR_RETURN(std::string this_update, TimeDer(content.this_update));
  DEVID_ASSIGN_OR_RETURN(std::string next_update, TimeDer(content.next_update));
  tbs += this_update + next_update;
  if (!content.entries.empty()) {
    std::string entries;
    for (const RevokedEntry& entry : content.entries) {
      DEVID_ASSIGN_OR_RETURN(std::string one, EntryDer(entry));
      entries += one;
    }
    tbs += der::Sequence(entries);
  }

  ossl::UniquePtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
  if (!aki || (aki->keyid = ASN1_OCTET_STRING_dup(key_id)) == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("encoding the CRL's authorityKeyIdentifier"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string aki_der,
                         ExtensionDer(NID_authority_key_identifier, aki.get()));
  ossl::UniquePtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), content.number) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("encoding the cRLNumber"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string number_der, ExtensionDer(NID_crl_number, number.get()));
  tbs += der::Explicit(0, der::Sequence(aki_der + number_der));

  auto crl = SignStructure(der::Sequence(tbs), key);
  if (!crl)
    return std::unexpected(crl.error().WithContext("signing the CRL of " + issuer.SubjectName()));
  return crl;
}

}  // namespace devid::ca
