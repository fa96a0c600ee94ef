#pragma once

#include <string_view>

#include "base/result.h"
#include "registry/certificate_record.h"
#include "registry/enrollment.h"
#include "registry/registration.h"
#include "registry/store_codec.h"

// The column order of the enrollment, group, registration and certificate rows (see each
// dialect's queries.h and certificate_sql.h), written once for every SQL back end. Params needs
// Text(string_view) and Int(int64_t), binding the next parameter, and Blob(string_view) for
// binary values; Columns needs Text(), Int(), Bool() and Time(), reading the next column of the
// current row, and Blob() -> Result<std::string> for binary ones.
namespace devid::registry::row_codec {

// BindSettings binds the settings columns. iot_hubs is passed already joined (JoinHubs), since
// a binding may refer to it until the statement runs.
template <typename Params>
void BindSettings(Params& p, const EnrollmentSettings& s, std::string_view iot_hubs) {
  const AttestationMechanism& a = s.attestation;
  p.Text(store_codec::AttestationTypeName(a.type));
  p.Text(a.symmetric_key.primary_key);
  p.Text(a.symmetric_key.secondary_key);
  p.Text(a.x509.client_primary_pem);
  p.Text(a.x509.client_secondary_pem);
  p.Text(a.x509.signing_primary_pem);
  p.Text(a.x509.signing_secondary_pem);
  p.Text(a.x509.ca_reference_primary);
  p.Text(a.x509.ca_reference_secondary);
  p.Text(a.tpm.endorsement_key);
  p.Text(a.tpm.storage_root_key);
  p.Int(s.enabled);
  p.Int(s.iot_edge);
  p.Text(s.initial_twin_json);
  p.Int(s.reprovision_policy.update_hub_assignment);
  p.Int(s.reprovision_policy.migrate_device_data);
  p.Text(s.allocation_policy);
  p.Text(iot_hubs);
  p.Text(s.iot_hub_host_name);
  p.Text(s.custom_allocation_json);
  p.Text(s.etag);
  p.Int(store_codec::ToMicros(s.created));
  p.Int(store_codec::ToMicros(s.updated));
}

// ReadSettings reads the settings columns, in BindSettings' order.
template <typename Columns>
Result<EnrollmentSettings> ReadSettings(Columns& c) {
  EnrollmentSettings s;
  AttestationMechanism& a = s.attestation;
  DEVID_ASSIGN_OR_RETURN(a.type, store_codec::ParseAttestationType(c.Text()));
  a.symmetric_key.primary_key = c.Text();
  a.symmetric_key.secondary_key = c.Text();
  a.x509.client_primary_pem = c.Text();
  a.x509.client_secondary_pem = c.Text();
  a.x509.signing_primary_pem = c.Text();
  a.x509.signing_secondary_pem = c.Text();
  a.x509.ca_reference_primary = c.Text();
  a.x509.ca_reference_secondary = c.Text();
  a.tpm.endorsement_key = c.Text();
  a.tpm.storage_root_key = c.Text();
  s.enabled = c.Bool();
  s.iot_edge = c.Bool();
  s.initial_twin_json = c.Text();
  s.reprovision_policy.update_hub_assignment = c.Bool();
  s.reprovision_policy.migrate_device_data = c.Bool();
  s.allocation_policy = c.Text();
  s.iot_hubs = store_codec::SplitHubs(c.Text());
  s.iot_hub_host_name = c.Text();
  s.custom_allocation_json = c.Text();
  s.etag = c.Text();
  s.created = c.Time();
  s.updated = c.Time();
  return s;
}

// ReadEnrollment reads an enrollment row: its ID columns, the settings, then the TPM policy.
template <typename Columns>
Result<Enrollment> ReadEnrollment(Columns& c) {
  Enrollment e;
  e.registration_id = c.Text();
  e.device_id = c.Text();
  e.optional_device_information_json = c.Text();
  DEVID_ASSIGN_OR_RETURN(e.settings, ReadSettings(c));
  e.settings.attestation.tpm.require_ek_certificate = c.Bool();
  e.settings.attestation.tpm.pcr_policy = c.Text();
  return e;
}

// BindEnrollmentTpmPolicy binds the enrollment-only columns that follow the settings.
template <typename Params>
void BindEnrollmentTpmPolicy(Params& p, const Enrollment& e) {
  p.Int(e.settings.attestation.tpm.require_ek_certificate);
  p.Text(e.settings.attestation.tpm.pcr_policy);
}

// ReadGroup reads an enrollment group row: its ID and prefix, then the settings.
template <typename Columns>
Result<EnrollmentGroup> ReadGroup(Columns& c) {
  EnrollmentGroup g;
  g.enrollment_group_id = c.Text();
  g.registration_id_prefix = c.Text();
  DEVID_ASSIGN_OR_RETURN(g.settings, ReadSettings(c));
  return g;
}

// ReadRegistration reads a registration row.
template <typename Columns>
Result<Registration> ReadRegistration(Columns& c) {
  Registration r;
  r.registration_id = c.Text();
  r.device_id = c.Text();
  r.assigned_hub = c.Text();
  r.status = c.Text();
  r.substatus = c.Text();
  r.operation_id = c.Text();
  r.enrollment_group_id = c.Text();
  DEVID_ASSIGN_OR_RETURN(r.attestation_type, store_codec::ParseAttestationType(c.Text()));
  r.payload_json = c.Text();
  r.response_payload_json = c.Text();
  r.error_code = static_cast<int>(c.Int());
  r.error_message = c.Text();
  r.etag = c.Text();
  r.created = c.Time();
  r.updated = c.Time();
  r.device_key = c.Text();
  r.tpm_storage_root_key = c.Text();
  return r;
}

// BindCertificate binds a certificates row in certificate_sql::kColumns order. The record's
// strings are referred to, so it must outlive the statement's run.
template <typename Params>
void BindCertificate(Params& p, const CertificateRecord& r) {
  p.Text(r.sha256_thumbprint);
  p.Text(r.sha1_thumbprint);
  p.Text(r.serial);
  p.Text(r.subject);
  p.Text(r.issuer);
  p.Text(r.issuer_key_id);
  p.Int(store_codec::ToMicros(r.not_before));
  p.Int(store_codec::ToMicros(r.not_after));
  p.Text(r.device_id);
  p.Text(r.profile);
  p.Text(store_codec::CertificateSourceName(r.source));
  p.Blob(r.der);
  p.Int(r.revoked ? 1 : 0);
  p.Int(r.revocation_reason);
  p.Int(r.revoked ? store_codec::ToMicros(r.revoked_at) : 0);
  p.Int(store_codec::ToMicros(r.first_seen));
  p.Int(store_codec::ToMicros(r.last_seen));
}

// ReadCertificate reads a certificates row, in BindCertificate's order.
template <typename Columns>
Result<CertificateRecord> ReadCertificate(Columns& c) {
  CertificateRecord r;
  r.sha256_thumbprint = c.Text();
  r.sha1_thumbprint = c.Text();
  r.serial = c.Text();
  r.subject = c.Text();
  r.issuer = c.Text();
  r.issuer_key_id = c.Text();
  r.not_before = c.Time();
  r.not_after = c.Time();
  r.device_id = c.Text();
  r.profile = c.Text();
  DEVID_ASSIGN_OR_RETURN(r.source, store_codec::ParseCertificateSource(c.Text()));
  DEVID_ASSIGN_OR_RETURN(r.der, c.Blob());
  r.revoked = c.Bool();
  r.revocation_reason = static_cast<int>(c.Int());
  r.revoked_at = c.Time();
  r.first_seen = c.Time();
  r.last_seen = c.Time();
  return r;
}

}  // namespace devid::registry::row_codec
