#include "ca/recorded_issuance.h"

#include "ca/inventory.h"

namespace devid::ca {

Result<pki::Certificate> IssueRecorded(const Authority& authority, registry::Registry& registry,
                                       std::string_view profile, const CertificateRequest& request,
                                       std::string device_id, std::string_view audit_action,
                                       const registry::Actor& actor) {
  DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate, authority.IssueUnparsed(profile, request));
  auto recorded = registry.RecordCertificate(
      InventoryRecord(certificate, registry::CertificateSource::kIssued, std::move(device_id),
                      std::string(profile)),
      audit_action, actor);
  if (!recorded) {
    return std::unexpected(
        recorded.error().WithContext("recording certificate " + certificate.SerialHex()));
  }
  return certificate;
}

}  // namespace devid::ca
