#include "ca/inventory.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <span>

#include "base/hex.h"

namespace devid::ca {

std::string AuthorityKeyIdHex(const pki::Certificate& certificate) {
  const ASN1_OCTET_STRING* id = X509_get0_authority_key_id(certificate.get());
  ERR_clear_error();  // computing the cached extensions may leave benign entries
  if (id == nullptr) return "";
  return HexEncode(std::span<const uint8_t>(ASN1_STRING_get0_data(id),
                                            static_cast<size_t>(ASN1_STRING_length(id))));
}

registry::CertificateRecord InventoryRecord(const pki::Certificate& certificate,
                                            registry::CertificateSource source,
                                            std::string device_id, std::string profile) {
  registry::CertificateRecord record;
  record.sha256_thumbprint = certificate.Sha256Thumbprint();
  record.sha1_thumbprint = certificate.Sha1Thumbprint();
  record.serial = certificate.SerialHex();
  record.subject = certificate.SubjectName();
  record.issuer = certificate.IssuerName();
  record.issuer_key_id = AuthorityKeyIdHex(certificate);
  record.not_before = certificate.NotBefore();
  record.not_after = certificate.NotAfter();
  record.device_id = std::move(device_id);
  record.profile = std::move(profile);
  record.source = source;
  record.der = certificate.ToDer();
  return record;
}

}  // namespace devid::ca
