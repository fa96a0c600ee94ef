#include "registry/certificate_sql.h"

#include <charconv>
#include <utility>

#include "registry/store_codec.h"

namespace devid::registry::certificate_sql {
namespace {

// Builder numbers placeholders in the order their values are added.
class Builder {
 public:
  explicit Builder(Dialect dialect) : dialect_(dialect) {}

  std::string Text(std::string value) {
    query_.values.emplace_back(std::move(value));
    return Placeholder("");
  }
  std::string Int(int64_t value) {
    query_.values.emplace_back(value);
    return Placeholder("::bigint");
  }

  // Where appends filter's conditions (and extra, when not empty) as a WHERE clause.
  void Where(const CertificateFilter& filter, std::string_view extra) {
    std::string conditions;
    auto add = [&](std::string condition) {
      conditions += conditions.empty() ? " WHERE " : " AND ";
      conditions += condition;
    };
    if (filter.sha256_thumbprint) add("sha256_thumbprint = " + Text(*filter.sha256_thumbprint));
    if (filter.sha1_thumbprint) add("sha1_thumbprint = " + Text(*filter.sha1_thumbprint));
    if (filter.serial) add("serial = " + Text(*filter.serial));
    if (filter.issuer_key_id) add("issuer_key_id = " + Text(*filter.issuer_key_id));
    if (filter.device_id) add("device_id = " + Text(*filter.device_id));
    if (filter.source) {
      add("source = " + Text(std::string(store_codec::CertificateSourceName(*filter.source))));
    }
    if (filter.revoked) add("revoked = " + Int(*filter.revoked ? 1 : 0));
    if (filter.expiring_before) {
      add("not_after_us < " + Int(store_codec::ToMicros(*filter.expiring_before)));
    }
    if (!extra.empty()) add(std::string(extra));
    query_.sql += conditions;
  }

  void Append(std::string_view sql) { query_.sql += sql; }
  Query Take() { return std::move(query_); }

 private:
  std::string Placeholder(std::string_view cast) const {
    std::string n = std::to_string(query_.values.size());
    return dialect_ == Dialect::kSqlite ? "?" + n : "$" + n + std::string(cast);
  }

  Dialect dialect_;
  Query query_;
};

}  // namespace

bool IsEmpty(const CertificateFilter& filter) {
  return !filter.sha256_thumbprint && !filter.sha1_thumbprint && !filter.serial &&
         !filter.issuer_key_id && !filter.device_id && !filter.source && !filter.revoked &&
         !filter.expiring_before;
}

std::string Describe(const CertificateFilter& filter) {
  std::string out;
  auto add = [&out](std::string_view name, std::string_view value) {
    if (!out.empty()) out += ", ";
    out += std::string(name) + " \"" + std::string(value) + "\"";
  };
  if (filter.sha256_thumbprint) add("SHA-256 thumbprint", *filter.sha256_thumbprint);
  if (filter.sha1_thumbprint) add("SHA-1 thumbprint", *filter.sha1_thumbprint);
  if (filter.serial) add("serial", *filter.serial);
  if (filter.issuer_key_id) add("issuer key ID", *filter.issuer_key_id);
  if (filter.device_id) add("device", *filter.device_id);
  if (filter.source) add("source", store_codec::CertificateSourceName(*filter.source));
  if (filter.revoked) add("revoked", *filter.revoked ? "true" : "false");
  if (filter.expiring_before) {
    add("expiring before (us)", std::to_string(store_codec::ToMicros(*filter.expiring_before)));
  }
  return out.empty() ? "no filter" : out;
}

std::string CursorKey(const CertificateRecord& last) {
  return std::to_string(store_codec::ToMicros(last.not_after)) + "/" + last.sha256_thumbprint;
}

Result<Cursor> DecodeCursor(std::string_view continuation) {
  if (continuation.empty()) return Cursor();
  DEVID_ASSIGN_OR_RETURN(std::string key, store_codec::DecodeContinuation(continuation));
  const Error malformed = InvalidArgument("reading the continuation token: it is malformed");
  size_t slash = key.find('/');
  if (slash == std::string::npos) return std::unexpected(malformed);
  Cursor cursor;
  const char* end = key.data() + slash;
  auto [ptr, ec] = std::from_chars(key.data(), end, cursor.not_after_us);
  if (ec != std::errc() || ptr != end) return std::unexpected(malformed);
  cursor.sha256_thumbprint = key.substr(slash + 1);
  return cursor;
}

Query Page(const CertificateFilter& filter, const Cursor& after, int fetch, Dialect dialect) {
  Builder b(dialect);
  b.Append("SELECT " + std::string(kColumns) + " FROM certificates");
  // A row value comparison walks the (not_after_us, sha256_thumbprint) index from the cursor on.
  // (Placeholders are numbered as they are made: one per statement keeps the order certain.)
  std::string after_us = b.Int(after.not_after_us);
  std::string after_thumbprint = b.Text(after.sha256_thumbprint);
  b.Where(filter,
          "(not_after_us, sha256_thumbprint) > (" + after_us + ", " + after_thumbprint + ")");
  b.Append(" ORDER BY not_after_us, sha256_thumbprint LIMIT " + b.Int(fetch));
  return b.Take();
}

Query Revoke(const CertificateFilter& filter, int reason, int64_t now_us, Dialect dialect) {
  Builder b(dialect);
  std::string reason_param = b.Int(reason);
  std::string now_param = b.Int(now_us);
  b.Append("UPDATE certificates SET revoked = 1, revocation_reason = " + reason_param +
           ", revoked_at_us = " + now_param);
  b.Where(filter, "source = 'issued' AND revoked = 0");
  b.Append(" RETURNING " + std::string(kColumns));
  return b.Take();
}

Query AnyIssued(const CertificateFilter& filter, Dialect dialect) {
  Builder b(dialect);
  b.Append("SELECT 1 FROM certificates");
  b.Where(filter, "source = 'issued'");
  b.Append(" LIMIT 1");
  return b.Take();
}

}  // namespace devid::registry::certificate_sql
