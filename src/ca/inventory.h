#pragma once

#include <string>

#include "pki/certificate.h"
#include "registry/certificate_record.h"

namespace devid::ca {

// InventoryRecord describes certificate for the registry's inventory: thumbprints, serial, names,
// validity, the issuer's key ID (its authorityKeyIdentifier) and the DER. Revocation and the
// seen-times are left for the store.
registry::CertificateRecord InventoryRecord(const pki::Certificate& certificate,
                                            registry::CertificateSource source,
                                            std::string device_id, std::string profile);

// AuthorityKeyIdHex returns a certificate's authorityKeyIdentifier keyIdentifier as lowercase
// hex (the issuing CA's KeyIdHex), or "" when it has none.
std::string AuthorityKeyIdHex(const pki::Certificate& certificate);

}  // namespace devid::ca
