#pragma once

#include <string_view>

// The SQL SqliteRegistry runs, in one place so the column orders below can be checked against the
// code that binds and reads them (sqlite_registry.cc). Internal to the SQLite back end.
//
// kEnrollmentColumns: registration_id, device_id, optional_device_information_json, settings...,
//   tpm_require_ek_certificate, tpm_pcr_policy
// kGroupColumns: enrollment_group_id, registration_id_prefix, settings...
// kRegistrationColumns: registration_id, device_id, assigned_hub, status, substatus,
//   operation_id, enrollment_group_id, attestation_type, payload_json, response_payload_json,
//   error_code, error_message, etag, created_us, updated_us, device_key, tpm_storage_root_key
// settings: attestation_type, symmetric_key_primary, symmetric_key_secondary,
//   x509_client_primary_pem, x509_client_secondary_pem, x509_signing_primary_pem,
//   x509_signing_secondary_pem, x509_ca_reference_primary, x509_ca_reference_secondary,
//   tpm_endorsement_key, tpm_storage_root_key, enabled, iot_edge, initial_twin_json,
//   reprovision_update_hub_assignment, reprovision_migrate_device_data, allocation_policy,
//   iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, updated_us
// certificates: as certificate_sql::kColumns (whose filter-dependent queries are built there)

namespace devid::registry::sqlite {

// kSelectEnrollment reads one enrollment (?1: registration ID), columns as kEnrollmentColumns.
inline constexpr std::string_view kSelectEnrollment =
    "SELECT "
    "registration_id, device_id, optional_device_information_json, attestation_type, "
    "symmetric_key_primary, symmetric_key_secondary, x509_client_primary_pem, "
    "x509_client_secondary_pem, x509_signing_primary_pem, x509_signing_secondary_pem, "
    "x509_ca_reference_primary, x509_ca_reference_secondary, tpm_endorsement_key, "
    "tpm_storage_root_key, enabled, iot_edge, initial_twin_json, "
    "reprovision_update_hub_assignment, reprovision_migrate_device_data, allocation_policy, "
    "iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, updated_us, "
    "tpm_require_ek_certificate, tpm_pcr_policy "
    "FROM enrollments WHERE registration_id = ?1";

// kPageEnrollments reads up to ?2 enrollments whose registration ID is after ?1, in order.
inline constexpr std::string_view kPageEnrollments =
    "SELECT "
    "registration_id, device_id, optional_device_information_json, attestation_type, "
    "symmetric_key_primary, symmetric_key_secondary, x509_client_primary_pem, "
    "x509_client_secondary_pem, x509_signing_primary_pem, x509_signing_secondary_pem, "
    "x509_ca_reference_primary, x509_ca_reference_secondary, tpm_endorsement_key, "
    "tpm_storage_root_key, enabled, iot_edge, initial_twin_json, "
    "reprovision_update_hub_assignment, reprovision_migrate_device_data, allocation_policy, "
    "iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, updated_us, "
    "tpm_require_ek_certificate, tpm_pcr_policy "
    "FROM enrollments WHERE registration_id > ?1 ORDER BY registration_id LIMIT ?2";

// kEnrollmentVersion reads an enrollment's etag and created_us (?1: registration ID).
inline constexpr std::string_view kEnrollmentVersion =
    "SELECT etag, created_us FROM enrollments WHERE registration_id = ?1";

// kUpsertEnrollment writes an enrollment, parameters in kEnrollmentColumns order. On update it
// keeps created_us.
inline constexpr std::string_view kUpsertEnrollment =
    "INSERT INTO enrollments ("
    "registration_id, device_id, optional_device_information_json, attestation_type, "
    "symmetric_key_primary, symmetric_key_secondary, x509_client_primary_pem, "
    "x509_client_secondary_pem, x509_signing_primary_pem, x509_signing_secondary_pem, "
    "x509_ca_reference_primary, x509_ca_reference_secondary, tpm_endorsement_key, "
    "tpm_storage_root_key, enabled, iot_edge, initial_twin_json, "
    "reprovision_update_hub_assignment, reprovision_migrate_device_data, allocation_policy, "
    "iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, updated_us, "
    "tpm_require_ek_certificate, tpm_pcr_policy "
    ") VALUES ("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
    "?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28 "
    ") ON CONFLICT (registration_id) DO UPDATE SET "
    "device_id = excluded.device_id, "
    "optional_device_information_json = excluded.optional_device_information_json, "
    "attestation_type = excluded.attestation_type, "
    "symmetric_key_primary = excluded.symmetric_key_primary, "
    "symmetric_key_secondary = excluded.symmetric_key_secondary, "
    "x509_client_primary_pem = excluded.x509_client_primary_pem, "
    "x509_client_secondary_pem = excluded.x509_client_secondary_pem, "
    "x509_signing_primary_pem = excluded.x509_signing_primary_pem, "
    "x509_signing_secondary_pem = excluded.x509_signing_secondary_pem, "
    "x509_ca_reference_primary = excluded.x509_ca_reference_primary, "
    "x509_ca_reference_secondary = excluded.x509_ca_reference_secondary, "
    "tpm_endorsement_key = excluded.tpm_endorsement_key, "
    "tpm_storage_root_key = excluded.tpm_storage_root_key, enabled = excluded.enabled, "
    "iot_edge = excluded.iot_edge, initial_twin_json = excluded.initial_twin_json, "
    "reprovision_update_hub_assignment = excluded.reprovision_update_hub_assignment, "
    "reprovision_migrate_device_data = excluded.reprovision_migrate_device_data, "
    "allocation_policy = excluded.allocation_policy, iot_hubs = excluded.iot_hubs, "
    "iot_hub_host_name = excluded.iot_hub_host_name, "
    "custom_allocation_json = excluded.custom_allocation_json, etag = excluded.etag, "
    "updated_us = excluded.updated_us, "
    "tpm_require_ek_certificate = excluded.tpm_require_ek_certificate, "
    "tpm_pcr_policy = excluded.tpm_pcr_policy";

// kDeleteEnrollment removes an enrollment (?1: registration ID).
inline constexpr std::string_view kDeleteEnrollment =
    "DELETE FROM enrollments WHERE registration_id = ?1";

// kSelectGroup reads one group (?1: group ID), columns as kGroupColumns.
inline constexpr std::string_view kSelectGroup =
    "SELECT "
    "enrollment_group_id, registration_id_prefix, attestation_type, symmetric_key_primary, "
    "symmetric_key_secondary, x509_client_primary_pem, x509_client_secondary_pem, "
    "x509_signing_primary_pem, x509_signing_secondary_pem, x509_ca_reference_primary, "
    "x509_ca_reference_secondary, tpm_endorsement_key, tpm_storage_root_key, enabled, iot_edge, "
    "initial_twin_json, reprovision_update_hub_assignment, reprovision_migrate_device_data, "
    "allocation_policy, iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, "
    "updated_us "
    "FROM enrollment_groups WHERE enrollment_group_id = ?1";

// kPageGroups reads up to ?2 groups whose ID is after ?1, in order.
inline constexpr std::string_view kPageGroups =
    "SELECT "
    "enrollment_group_id, registration_id_prefix, attestation_type, symmetric_key_primary, "
    "symmetric_key_secondary, x509_client_primary_pem, x509_client_secondary_pem, "
    "x509_signing_primary_pem, x509_signing_secondary_pem, x509_ca_reference_primary, "
    "x509_ca_reference_secondary, tpm_endorsement_key, tpm_storage_root_key, enabled, iot_edge, "
    "initial_twin_json, reprovision_update_hub_assignment, reprovision_migrate_device_data, "
    "allocation_policy, iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, "
    "updated_us "
    "FROM enrollment_groups WHERE enrollment_group_id > ?1 "
    "ORDER BY enrollment_group_id LIMIT ?2";

// kGroupVersion reads a group's etag and created_us (?1: group ID).
inline constexpr std::string_view kGroupVersion =
    "SELECT etag, created_us FROM enrollment_groups WHERE enrollment_group_id = ?1";

// kUpsertGroup writes a group, parameters in kGroupColumns order. On update it keeps created_us.
inline constexpr std::string_view kUpsertGroup =
    "INSERT INTO enrollment_groups ("
    "enrollment_group_id, registration_id_prefix, attestation_type, symmetric_key_primary, "
    "symmetric_key_secondary, x509_client_primary_pem, x509_client_secondary_pem, "
    "x509_signing_primary_pem, x509_signing_secondary_pem, x509_ca_reference_primary, "
    "x509_ca_reference_secondary, tpm_endorsement_key, tpm_storage_root_key, enabled, iot_edge, "
    "initial_twin_json, reprovision_update_hub_assignment, reprovision_migrate_device_data, "
    "allocation_policy, iot_hubs, iot_hub_host_name, custom_allocation_json, etag, created_us, "
    "updated_us "
    ") VALUES ("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
    "?21, ?22, ?23, ?24, ?25 "
    ") ON CONFLICT (enrollment_group_id) DO UPDATE SET "
    "registration_id_prefix = excluded.registration_id_prefix, "
    "attestation_type = excluded.attestation_type, "
    "symmetric_key_primary = excluded.symmetric_key_primary, "
    "symmetric_key_secondary = excluded.symmetric_key_secondary, "
    "x509_client_primary_pem = excluded.x509_client_primary_pem, "
    "x509_client_secondary_pem = excluded.x509_client_secondary_pem, "
    "x509_signing_primary_pem = excluded.x509_signing_primary_pem, "
    "x509_signing_secondary_pem = excluded.x509_signing_secondary_pem, "
    "x509_ca_reference_primary = excluded.x509_ca_reference_primary, "
    "x509_ca_reference_secondary = excluded.x509_ca_reference_secondary, "
    "tpm_endorsement_key = excluded.tpm_endorsement_key, "
    "tpm_storage_root_key = excluded.tpm_storage_root_key, enabled = excluded.enabled, "
    "iot_edge = excluded.iot_edge, initial_twin_json = excluded.initial_twin_json, "
    "reprovision_update_hub_assignment = excluded.reprovision_update_hub_assignment, "
    "reprovision_migrate_device_data = excluded.reprovision_migrate_device_data, "
    "allocation_policy = excluded.allocation_policy, iot_hubs = excluded.iot_hubs, "
    "iot_hub_host_name = excluded.iot_hub_host_name, "
    "custom_allocation_json = excluded.custom_allocation_json, etag = excluded.etag, "
    "updated_us = excluded.updated_us";

// kDeleteGroup removes a group (?1: group ID).
inline constexpr std::string_view kDeleteGroup =
    "DELETE FROM enrollment_groups WHERE enrollment_group_id = ?1";

// kFindGroupCandidates reads the groups of attestation type ?2 that may hold registration ID ?1.
// It generates every prefix length of ?1 (0 for the catch-all groups) and probes the prefix index
// once per length: CROSS JOIN makes SQLite keep the lengths as the outer loop
// (https://www.sqlite.org/optoverview.html#manual_control_of_join_order_using_cross_join), so
// the cost grows with the ID's length, not with the number of groups. Longest prefix first, then
// creation order.
inline constexpr std::string_view kFindGroupCandidates =
    "WITH RECURSIVE lengths(n) AS ( "
    "    SELECT 0 UNION ALL SELECT n + 1 FROM lengths WHERE n < length(?1)) "
    "SELECT "
    "g.enrollment_group_id, g.registration_id_prefix, g.attestation_type, "
    "g.symmetric_key_primary, g.symmetric_key_secondary, g.x509_client_primary_pem, "
    "g.x509_client_secondary_pem, g.x509_signing_primary_pem, g.x509_signing_secondary_pem, "
    "g.x509_ca_reference_primary, g.x509_ca_reference_secondary, g.tpm_endorsement_key, "
    "g.tpm_storage_root_key, g.enabled, g.iot_edge, g.initial_twin_json, "
    "g.reprovision_update_hub_assignment, g.reprovision_migrate_device_data, g.allocation_policy, "
    "g.iot_hubs, g.iot_hub_host_name, g.custom_allocation_json, g.etag, g.created_us, "
    "g.updated_us "
    "FROM lengths CROSS JOIN enrollment_groups AS g "
    "WHERE g.registration_id_prefix = substr(?1, 1, lengths.n) AND g.attestation_type = ?2 "
    "ORDER BY lengths.n DESC, g.created_us, g.enrollment_group_id";

// kSelectRegistration reads one registration (?1: registration ID), columns as
// kRegistrationColumns.
inline constexpr std::string_view kSelectRegistration =
    "SELECT "
    "registration_id, device_id, assigned_hub, status, substatus, operation_id, "
    "enrollment_group_id, attestation_type, payload_json, response_payload_json, error_code, "
    "error_message, etag, created_us, updated_us, device_key, tpm_storage_root_key "
    "FROM registrations WHERE registration_id = ?1";

// kPageGroupRegistrations reads up to ?3 registrations of group ?1 whose ID is after ?2, in order.
inline constexpr std::string_view kPageGroupRegistrations =
    "SELECT "
    "registration_id, device_id, assigned_hub, status, substatus, operation_id, "
    "enrollment_group_id, attestation_type, payload_json, response_payload_json, error_code, "
    "error_message, etag, created_us, updated_us, device_key, tpm_storage_root_key "
    "FROM registrations WHERE enrollment_group_id = ?1 AND registration_id > ?2 "
    "ORDER BY registration_id LIMIT ?3";

// kRegistrationVersion reads a registration's etag and created_us (?1: registration ID).
inline constexpr std::string_view kRegistrationVersion =
    "SELECT etag, created_us FROM registrations WHERE registration_id = ?1";

// kUpsertRegistration writes a registration, parameters in kRegistrationColumns order, and
// returns the stored created_us, which an update keeps.
inline constexpr std::string_view kUpsertRegistration =
    "INSERT INTO registrations ("
    "registration_id, device_id, assigned_hub, status, substatus, operation_id, "
    "enrollment_group_id, attestation_type, payload_json, response_payload_json, error_code, "
    "error_message, etag, created_us, updated_us, device_key, tpm_storage_root_key "
    ") VALUES ("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17 "
    ") ON CONFLICT (registration_id) DO UPDATE SET "
    "device_id = excluded.device_id, assigned_hub = excluded.assigned_hub, "
    "status = excluded.status, substatus = excluded.substatus, "
    "operation_id = excluded.operation_id, enrollment_group_id = excluded.enrollment_group_id, "
    "attestation_type = excluded.attestation_type, payload_json = excluded.payload_json, "
    "response_payload_json = excluded.response_payload_json, error_code = excluded.error_code, "
    "error_message = excluded.error_message, etag = excluded.etag, "
    "updated_us = excluded.updated_us, device_key = excluded.device_key, "
    "tpm_storage_root_key = excluded.tpm_storage_root_key "
    "RETURNING created_us";

// kDeleteRegistration removes a registration (?1: registration ID).
inline constexpr std::string_view kDeleteRegistration =
    "DELETE FROM registrations WHERE registration_id = ?1";

// kUpsertChallenge stores the pending challenge for ?1 (secret ?2, expires_us ?3, created_us
// ?4), replacing any.
inline constexpr std::string_view kUpsertChallenge =
    "INSERT INTO challenges (registration_id, secret, expires_us, created_us) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (registration_id) DO UPDATE SET "
    "secret = excluded.secret, expires_us = excluded.expires_us, "
    "created_us = excluded.created_us";

// kSelectChallenge reads the challenge for ?1 that expires after ?2: secret, expires_us.
inline constexpr std::string_view kSelectChallenge =
    "SELECT secret, expires_us FROM challenges WHERE registration_id = ?1 AND expires_us > ?2";

// kDeleteChallenge removes the challenge for ?1 (a registration consumes it).
inline constexpr std::string_view kDeleteChallenge =
    "DELETE FROM challenges WHERE registration_id = ?1";

// kSelectSetting reads a setting's value (?1: name).
inline constexpr std::string_view kSelectSetting = "SELECT value FROM settings WHERE name = ?1";

// kUpsertSetting writes setting ?1 = ?2 at time ?3.
inline constexpr std::string_view kUpsertSetting =
    "INSERT INTO settings (name, value, updated_us) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us";

// kInsertSettingIfAbsent writes setting ?1 = ?2 at time ?3 unless it is set, returning the name
// only when it wrote.
inline constexpr std::string_view kInsertSettingIfAbsent =
    "INSERT INTO settings (name, value, updated_us) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (name) DO NOTHING RETURNING name";

// kInsertCertificate records a certificate, parameters in certificate_sql::kColumns order; a
// taken thumbprint or (issuer, serial) fails the UNIQUE constraints.
inline constexpr std::string_view kInsertCertificate =
    "INSERT INTO certificates ("
    "sha256_thumbprint, sha1_thumbprint, serial, subject, issuer, issuer_key_id, "
    "not_before_us, not_after_us, device_id, profile, source, der, revoked, "
    "revocation_reason, revoked_at_us, first_seen_us, last_seen_us "
    ") VALUES ("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

// kObserveCertificate records a presented certificate as kInsertCertificate does, or, when its
// thumbprint is recorded, only moves last_seen_us forward (never back, whatever the node's clock).
inline constexpr std::string_view kObserveCertificate =
    "INSERT INTO certificates ("
    "sha256_thumbprint, sha1_thumbprint, serial, subject, issuer, issuer_key_id, "
    "not_before_us, not_after_us, device_id, profile, source, der, revoked, "
    "revocation_reason, revoked_at_us, first_seen_us, last_seen_us "
    ") VALUES ("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "
    "ON CONFLICT (sha256_thumbprint) DO UPDATE SET "
    "last_seen_us = MAX(last_seen_us, excluded.last_seen_us)";

// kSelectCertificateByIssuerSerial reads the thumbprint recorded for issuer ?1 and serial ?2.
inline constexpr std::string_view kSelectCertificateByIssuerSerial =
    "SELECT sha256_thumbprint FROM certificates WHERE issuer = ?1 AND serial = ?2";

// kSelectChangeCount reads the change counter (migration 8).
inline constexpr std::string_view kSelectChangeCount =
    "SELECT count FROM change_counter WHERE id = 1";

// kSelectRevocationVersion reads the revocation counter (0 before the first revocation).
inline constexpr std::string_view kSelectRevocationVersion =
    "SELECT COALESCE((SELECT version FROM revocation_version WHERE id = 1), 0)";

// kBumpRevocationVersion adds one to the revocation counter.
inline constexpr std::string_view kBumpRevocationVersion =
    "INSERT INTO revocation_version (id, version) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET version = revocation_version.version + 1";

// kLastAuditHash reads the chain hash of the last audit record (no row when the log is empty).
inline constexpr std::string_view kLastAuditHash =
    "SELECT chain_hash FROM audit_log ORDER BY sequence DESC LIMIT 1";

// kInsertAudit appends an audit record (?1 time_us, ?2 actor, ?3 action, ?4 object, ?5 outcome,
// ?6 chain_hash).
inline constexpr std::string_view kInsertAudit =
    "INSERT INTO audit_log (time_us, actor, action, object, outcome, chain_hash) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

// kPageAudit reads up to ?2 audit records with sequence after ?1, oldest first.
inline constexpr std::string_view kPageAudit =
    "SELECT sequence, time_us, actor, action, object, outcome, chain_hash FROM audit_log "
    "WHERE sequence > ?1 ORDER BY sequence LIMIT ?2";

// kInsertDeviceCommand stores a command for device ?1 under its next sequence number (issued
// ?2, expires ?3, body SHA-256 ?4) and returns the number.
inline constexpr std::string_view kInsertDeviceCommand =
    "INSERT INTO device_commands (device_id, sequence, issued_us, expires_us, body_sha256) "
    "SELECT ?1, COALESCE(MAX(sequence), 0) + 1, ?2, ?3, ?4 FROM device_commands "
    "WHERE device_id = ?1 RETURNING sequence";

}  // namespace devid::registry::sqlite
