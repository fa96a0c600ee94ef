#include "ca/inventory.h"

namespace devid::ca {

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
