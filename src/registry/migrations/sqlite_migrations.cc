#include "registry/migrations/sqlite_migrations.h"

namespace devid::registry {
namespace {

// The schema keeps to types PostgreSQL also has (TEXT, INTEGER, BIGINT) so its dialect can mirror
// it column for column. Times are microseconds since the Unix epoch; booleans are 0 or 1; JSON
// values are their text ("" when absent); iot_hubs is the hub names joined by '\n'. The
// attestation is kept as columns named for the DPS attestation fields.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE enrollments (
  registration_id TEXT NOT NULL PRIMARY KEY,
  device_id TEXT NOT NULL,
  optional_device_information_json TEXT NOT NULL,
  attestation_type TEXT NOT NULL,
  symmetric_key_primary TEXT NOT NULL,
  symmetric_key_secondary TEXT NOT NULL,
  x509_client_primary_pem TEXT NOT NULL,
  x509_client_secondary_pem TEXT NOT NULL,
  x509_signing_primary_pem TEXT NOT NULL,
  x509_signing_secondary_pem TEXT NOT NULL,
  x509_ca_reference_primary TEXT NOT NULL,
  x509_ca_reference_secondary TEXT NOT NULL,
  tpm_endorsement_key TEXT NOT NULL,
  tpm_storage_root_key TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  iot_edge INTEGER NOT NULL,
  initial_twin_json TEXT NOT NULL,
  reprovision_update_hub_assignment INTEGER NOT NULL,
  reprovision_migrate_device_data INTEGER NOT NULL,
  allocation_policy TEXT NOT NULL,
  iot_hubs TEXT NOT NULL,
  iot_hub_host_name TEXT NOT NULL,
  custom_allocation_json TEXT NOT NULL,
  etag TEXT NOT NULL,
  created_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL
);

CREATE TABLE enrollment_groups (
  enrollment_group_id TEXT NOT NULL PRIMARY KEY,
  registration_id_prefix TEXT NOT NULL,
  attestation_type TEXT NOT NULL,
  symmetric_key_primary TEXT NOT NULL,
  symmetric_key_secondary TEXT NOT NULL,
  x509_client_primary_pem TEXT NOT NULL,
  x509_client_secondary_pem TEXT NOT NULL,
  x509_signing_primary_pem TEXT NOT NULL,
  x509_signing_secondary_pem TEXT NOT NULL,
  x509_ca_reference_primary TEXT NOT NULL,
  x509_ca_reference_secondary TEXT NOT NULL,
  tpm_endorsement_key TEXT NOT NULL,
  tpm_storage_root_key TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  iot_edge INTEGER NOT NULL,
  initial_twin_json TEXT NOT NULL,
  reprovision_update_hub_assignment INTEGER NOT NULL,
  reprovision_migrate_device_data INTEGER NOT NULL,
  allocation_policy TEXT NOT NULL,
  iot_hubs TEXT NOT NULL,
  iot_hub_host_name TEXT NOT NULL,
  custom_allocation_json TEXT NOT NULL,
  etag TEXT NOT NULL,
  created_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL
);

-- Group lookup probes this index once per prefix length of a registration ID; the trailing
-- columns let each probe return its groups already filtered and in creation order.
CREATE INDEX enrollment_groups_by_prefix
  ON enrollment_groups (registration_id_prefix, attestation_type, created_us);

CREATE TABLE registrations (
  registration_id TEXT NOT NULL PRIMARY KEY,
  device_id TEXT NOT NULL,
  assigned_hub TEXT NOT NULL,
  status TEXT NOT NULL,
  substatus TEXT NOT NULL,
  operation_id TEXT NOT NULL,
  enrollment_group_id TEXT NOT NULL,
  attestation_type TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  response_payload_json TEXT NOT NULL,
  error_code INTEGER NOT NULL,
  error_message TEXT NOT NULL,
  etag TEXT NOT NULL,
  created_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL
);

CREATE INDEX registrations_by_group ON registrations (enrollment_group_id, registration_id);

CREATE TABLE settings (
  name TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL,
  updated_us BIGINT NOT NULL
);

CREATE TABLE audit_log (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  outcome TEXT NOT NULL
);
)sql";

// Migration 2: TPM attestation. A registration keeps the key the service generated for the
// device and the SRK it wraps that key for; challenges hold one pending proof-of-possession
// secret per registration ID (times in microseconds, like every other table).
constexpr std::string_view kChallenges = R"sql(
ALTER TABLE registrations ADD COLUMN device_key TEXT NOT NULL DEFAULT '';
ALTER TABLE registrations ADD COLUMN tpm_storage_root_key TEXT NOT NULL DEFAULT '';

CREATE TABLE challenges (
  registration_id TEXT NOT NULL PRIMARY KEY,
  secret TEXT NOT NULL,
  expires_us BIGINT NOT NULL,
  created_us BIGINT NOT NULL
);
)sql";

// Migration 3: the certificate inventory. One row per certificate devid issued or saw presented,
// keyed by its SHA-256 thumbprint; UNIQUE (issuer, serial) is what keeps two nodes from handing
// out one serial twice (RFC 5280 §4.1.2.2). source is "issued" or "observed"; der is the
// certificate's DER; revoked is 0 or 1 with its RFC 5280 §5.3.1 reason and time (0 when not
// revoked). The indexes serve the inventory's queries: a device's certificates, pages in expiry
// order, lookups by serial and SHA-1 thumbprint, and one CA's revoked certificates for its CRL.
// revocation_version holds at most one row (id 1): a counter bumped by every revocation, absent
// until the first, so a freshly migrated store holds no rows.
constexpr std::string_view kCertificates = R"sql(
CREATE TABLE certificates (
  sha256_thumbprint TEXT NOT NULL PRIMARY KEY,
  sha1_thumbprint TEXT NOT NULL,
  serial TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  issuer_key_id TEXT NOT NULL,
  not_before_us BIGINT NOT NULL,
  not_after_us BIGINT NOT NULL,
  device_id TEXT NOT NULL,
  profile TEXT NOT NULL,
  source TEXT NOT NULL,
  der BLOB NOT NULL,
  revoked INTEGER NOT NULL,
  revocation_reason INTEGER NOT NULL,
  revoked_at_us BIGINT NOT NULL,
  first_seen_us BIGINT NOT NULL,
  last_seen_us BIGINT NOT NULL,
  UNIQUE (issuer, serial)
);

CREATE INDEX certificates_by_device ON certificates (device_id, not_after_us, sha256_thumbprint);
CREATE INDEX certificates_by_expiry ON certificates (not_after_us, sha256_thumbprint);
CREATE INDEX certificates_by_serial ON certificates (serial);
CREATE INDEX certificates_by_sha1 ON certificates (sha1_thumbprint);
CREATE INDEX certificates_by_issuer_key ON certificates (issuer_key_id, revoked);

CREATE TABLE revocation_version (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
)sql";

// Migration 4: CA certificates for proof of possession (DPS "verified CA certificates"). One row
// per uploaded root or intermediate, keyed by the name enrollment groups' caReferences use; der is
// the certificate's DER; verified is 0 or 1; the pending verification code is kept only as its
// SHA-256 (hex, "" when none) with its expiry (0 when none). The two indexes find the groups that
// reference a certificate, which keep it from being deleted.
constexpr std::string_view kCaCertificates = R"sql(
CREATE TABLE ca_certificates (
  name TEXT NOT NULL PRIMARY KEY,
  der BLOB NOT NULL,
  sha256_thumbprint TEXT NOT NULL,
  subject TEXT NOT NULL,
  verified INTEGER NOT NULL,
  verification_code_hash TEXT NOT NULL,
  verification_code_expires_us BIGINT NOT NULL,
  etag TEXT NOT NULL,
  created_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL
);

CREATE INDEX enrollment_groups_by_ca_primary ON enrollment_groups (x509_ca_reference_primary);
CREATE INDEX enrollment_groups_by_ca_secondary ON enrollment_groups (x509_ca_reference_secondary);
)sql";

// Migration 5: the TPM enrollment policy (devid extensions): require_ek_certificate is 0 or 1;
// pcr_policy is tpm::FormatPcrPolicy's text ("" = no measured-boot policy). Individual
// enrollments only: TPM attestation has no groups.
constexpr std::string_view kTpmPolicy = R"sql(
ALTER TABLE enrollments ADD COLUMN tpm_require_ek_certificate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrollments ADD COLUMN tpm_pcr_policy TEXT NOT NULL DEFAULT '';
)sql";

// Migration 6: the audit log's hash chain (audit_chain.h). Records already in the log keep an
// empty chain_hash and are not chained after the fact: the chain starts at the first record
// appended after this step, which links to "" as its previous hash.
constexpr std::string_view kAuditChain = R"sql(
ALTER TABLE audit_log ADD COLUMN chain_hash TEXT NOT NULL DEFAULT '';
)sql";

// Migration 7: server-signed commands (docs/commands.md). One row per signed command; the
// primary key (device_id, sequence) is what makes a device's sequence numbers unique, also between
// nodes. The command body is not stored, only its SHA-256 (hex).
constexpr std::string_view kDeviceCommands = R"sql(
CREATE TABLE device_commands (
  device_id TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  issued_us BIGINT NOT NULL,
  expires_us BIGINT NOT NULL,
  body_sha256 TEXT NOT NULL,
  PRIMARY KEY (device_id, sequence)
);
)sql";

// Migration 8: the change counter (sqlite/snapshot_cache.h). One row (id 1) whose count goes up by
// one with every row inserted, updated or deleted in the tables a request's identity checks read,
// in the same transaction, whichever process writes: a reader that sees the count it saw before
// sees those tables as they were then.
constexpr std::string_view kChangeCounter = R"sql(
CREATE TABLE change_counter (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  count BIGINT NOT NULL
);
INSERT INTO change_counter (id, count) VALUES (1, 0);
CREATE TRIGGER enrollments_inserted AFTER INSERT ON enrollments
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER enrollments_updated AFTER UPDATE ON enrollments
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER enrollments_deleted AFTER DELETE ON enrollments
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER enrollment_groups_inserted AFTER INSERT ON enrollment_groups
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER enrollment_groups_updated AFTER UPDATE ON enrollment_groups
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER enrollment_groups_deleted AFTER DELETE ON enrollment_groups
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER registrations_inserted AFTER INSERT ON registrations
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER registrations_updated AFTER UPDATE ON registrations
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER registrations_deleted AFTER DELETE ON registrations
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_inserted AFTER INSERT ON certificates
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_updated AFTER UPDATE ON certificates
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_deleted AFTER DELETE ON certificates
  BEGIN UPDATE change_counter SET count = count + 1 WHERE id = 1; END;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kInitialSchema},
    {2, "registration device keys and challenges", kChallenges},
    {3, "certificate inventory", kCertificates},
    {4, "CA certificates", kCaCertificates},
    {5, "TPM enrollment policy", kTpmPolicy},
    {6, "audit log hash chain", kAuditChain},
    {7, "server-signed device commands", kDeviceCommands},
    {8, "change counter", kChangeCounter},
};

}  // namespace

std::span<const Migration> SqliteMigrations() { return kMigrations; }

}  // namespace devid::registry
