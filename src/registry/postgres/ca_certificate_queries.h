#pragma once

#include <string_view>

// The SQL the PostgreSQL back end runs for CA certificates (registry.h, ca_certificate.h).
// kCaCertificateColumns: name, der, sha256_thumbprint, subject, verified,
//   verification_code_hash, verification_code_expires_us, etag, created_us, updated_us
// (bound and read by ca_certificate_row.h in this order).

namespace devid::registry::postgres {

// kSelectCaCertificate reads one CA certificate ($1: name).
inline constexpr std::string_view kSelectCaCertificate =
    "SELECT name, der, sha256_thumbprint, subject, verified, verification_code_hash, "
    "verification_code_expires_us, etag, created_us, updated_us "
    "FROM ca_certificates WHERE name = $1";

// kPageCaCertificates reads up to $2 CA certificates whose name is after $1, in order.
inline constexpr std::string_view kPageCaCertificates =
    "SELECT name, der, sha256_thumbprint, subject, verified, verification_code_hash, "
    "verification_code_expires_us, etag, created_us, updated_us "
    "FROM ca_certificates WHERE name > $1 ORDER BY name LIMIT $2";

// kLockCaCertificate reads a CA certificate's etag under a row lock ($1: name).
inline constexpr std::string_view kLockCaCertificate =
    "SELECT etag FROM ca_certificates WHERE name = $1 FOR UPDATE";

// kUpsertCaCertificate writes a CA certificate, parameters in kCaCertificateColumns order, and
// returns the stored created_us, and whether it inserted. A replaced certificate loses its
// verification and pending code, as the parameters say.
inline constexpr std::string_view kUpsertCaCertificate =
    "INSERT INTO ca_certificates ("
    "name, der, sha256_thumbprint, subject, verified, verification_code_hash, "
    "verification_code_expires_us, etag, created_us, updated_us) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (name) DO UPDATE SET "
    "der = excluded.der, sha256_thumbprint = excluded.sha256_thumbprint, "
    "subject = excluded.subject, verified = excluded.verified, "
    "verification_code_hash = excluded.verification_code_hash, "
    "verification_code_expires_us = excluded.verification_code_expires_us, "
    "etag = excluded.etag, updated_us = excluded.updated_us "
    "RETURNING created_us, (xmax = 0) AS inserted";

// kDeleteCaCertificate removes a CA certificate ($1: name).
inline constexpr std::string_view kDeleteCaCertificate =
    "DELETE FROM ca_certificates WHERE name = $1";

// kCaCertificateReferrer reads the first enrollment group whose caReferences names $1.
inline constexpr std::string_view kCaCertificateReferrer =
    "SELECT enrollment_group_id FROM enrollment_groups "
    "WHERE x509_ca_reference_primary = $1 OR x509_ca_reference_secondary = $1 "
    "ORDER BY enrollment_group_id LIMIT 1";

// kSetCaVerificationCode makes $2 (code hash) pending until $3 for CA certificate $1,
// with etag $4 at $5, and returns the row.
inline constexpr std::string_view kSetCaVerificationCode =
    "UPDATE ca_certificates SET verification_code_hash = $2, "
    "verification_code_expires_us = $3, etag = $4, updated_us = $5 "
    "WHERE name = $1 "
    "RETURNING name, der, sha256_thumbprint, subject, verified, verification_code_hash, "
    "verification_code_expires_us, etag, created_us, updated_us";

// kConsumeCaVerificationCode marks CA certificate $1 verified and clears its code, with etag
// $5 at $6, only if it still has thumbprint $2, pending code hash $3 and the code
// expires after $4; returns the row when it did. One statement, so of two concurrent
// verifications the second finds the code gone.
inline constexpr std::string_view kConsumeCaVerificationCode =
    "UPDATE ca_certificates SET verified = 1, verification_code_hash = '', "
    "verification_code_expires_us = 0, etag = $5, updated_us = $6 "
    "WHERE name = $1 AND sha256_thumbprint = $2 AND verification_code_hash = $3 "
    "AND verification_code_hash <> '' AND verification_code_expires_us > $4 "
    "RETURNING name, der, sha256_thumbprint, subject, verified, verification_code_hash, "
    "verification_code_expires_us, etag, created_us, updated_us";

}  // namespace devid::registry::postgres
