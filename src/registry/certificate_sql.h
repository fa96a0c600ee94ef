#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "registry/certificate_record.h"

// The certificate inventory's SQL that depends on which filter fields are set, built here for
// both SQL back ends: written out statically it would be one statement per combination of
// fields, and a statement that skips unset fields with "? IS NULL OR ..." keeps SQLite and
// PostgreSQL's generic plans off the indexes. Only column names and parameter placeholders are
// ever spliced into the text; every value is a bound parameter.
namespace devid::registry::certificate_sql {

// kColumns is the certificates table's columns in row_codec's BindCertificate/ReadCertificate
// order.
inline constexpr std::string_view kColumns =
    "sha256_thumbprint, sha1_thumbprint, serial, subject, issuer, issuer_key_id, "
    "not_before_us, not_after_us, device_id, profile, source, der, revoked, "
    "revocation_reason, revoked_at_us, first_seen_us, last_seen_us";

// Dialect says how a back end spells parameters: SQLite ?1, PostgreSQL $1 (with a cast on
// integers, as libpq sends every parameter as text).
enum class Dialect { kSqlite, kPostgres };

// Value is one bound parameter: text or an integer.
using Value = std::variant<std::string, int64_t>;

// Query is a statement and its parameters' values, in placeholder order.
struct Query {
  std::string sql;
  std::vector<Value> values;
};

// Cursor is the (not_after, thumbprint) key a page continues after; the default is before every
// record.
struct Cursor {
  int64_t not_after_us = INT64_MIN;
  std::string sha256_thumbprint;
};

// IsEmpty reports whether filter sets no field (it selects everything).
bool IsEmpty(const CertificateFilter& filter);

// Describe names filter's set fields for messages: `serial "0A1B", device "dev-1"`.
std::string Describe(const CertificateFilter& filter);

// CursorKey is the key a page ending with last continues after, "<not_after_us>/<thumbprint>",
// which store_codec::EncodeContinuation turns into the opaque continuation. DecodeCursor reverses
// both ("" is the start) and fails with kInvalidArgument on a malformed token.
std::string CursorKey(const CertificateRecord& last);
Result<Cursor> DecodeCursor(std::string_view continuation);

// Page selects up to fetch records matching filter after cursor, in (not_after, thumbprint)
// order, columns as kColumns.
Query Page(const CertificateFilter& filter, const Cursor& after, int fetch, Dialect dialect);

// Revoke marks the issued, unrevoked records matching filter revoked with reason at now_us and
// returns them, columns as kColumns (in no particular order).
Query Revoke(const CertificateFilter& filter, int reason, int64_t now_us, Dialect dialect);

// AnyIssued returns one row when some issued record, revoked or not, matches filter.
Query AnyIssued(const CertificateFilter& filter, Dialect dialect);

}  // namespace devid::registry::certificate_sql
