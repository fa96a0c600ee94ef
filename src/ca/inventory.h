#pragma once

#include <string>

#include "ca/authority.h"
#include "pki/certificate.h"
#include "registry/certificate_record.h"

namespace devid::ca {

// InventoryRecord describes certificate for the registry's inventory: thumbprints, serial, names,
// validity, the issuer's key ID (its authorityKeyIdentifier) and the DER. Revocation and the
// seen-times are left for the store.
registry::CertificateRecord InventoryRecord(const pki::Certificate& certificate,
                                            registry::CertificateSource source,
                                            std::string device_id, std::string profile);

}  // namespace devid::ca
