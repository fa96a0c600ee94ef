#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "ca/authority.h"
#include "pki/certificate.h"
#include "registry/registry.h"

namespace devid::ca {

// IssueRecorded has authority issue request under profile and records the certificate in the
// inventory (source issued, device_id, profile) with audit_action by actor before returning it:
// no certificate devid signs leaves unrecorded, since the inventory is what discovery, renewal
// and revocation act on. The certificate comes from Authority::IssueUnparsed: to be encoded,
// recorded and sent, not used for its public key. Fails as Authority::Issue, or with the store's
// error (the certificate is then dropped).
Result<pki::Certificate> IssueRecorded(const Authority& authority, registry::Registry& registry,
                                       std::string_view profile, const CertificateRequest& request,
                                       std::string device_id, std::string_view audit_action,
                                       const registry::Actor& actor);

}  // namespace devid::ca
