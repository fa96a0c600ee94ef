#include "registry/audit_chain.h"

#include <chrono>
#include <vector>

#include "base/hex.h"
#include "ossl/mac.h"
#include "registry/registry.h"

namespace devid::registry {
namespace {

constexpr std::string_view kDomain = "devid-audit-v1";
constexpr int kPageSize = 1000;

void AppendField(std::string& out, std::string_view value) {
  uint32_t n = static_cast<uint32_t>(value.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += value;
}

}  // namespace

std::string AuditChainHash(std::string_view previous_hash, const AuditRecord& record) {
  int64_t time_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        record.time.time_since_epoch())
                        .count();
  std::string message(kDomain);
  AppendField(message, previous_hash);
  AppendField(message, std::to_string(time_us));
  AppendField(message, record.actor);
  AppendField(message, record.action);
  AppendField(message, record.object);
  AppendField(message, record.outcome);
  ossl::Sha256Digest digest = ossl::Sha256(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(message.data()), message.size()));
  return HexEncode(digest);
}

Result<AuditVerification> VerifyAuditChain(Registry& registry) {
  AuditVerification result;
  bool chained = false;
  int64_t after = 0;
  for (;;) {
    DEVID_ASSIGN_OR_RETURN(std::vector<AuditRecord> page, registry.ListAudit(after, kPageSize));
    if (page.empty()) return result;
    for (const AuditRecord& record : page) {
      ++result.records;
      if (!chained && record.chain_hash.empty()) {
        ++result.unchained;
      } else {
        chained = true;
        // Public values (anyone reading the log can compute them): no constant-time compare.
        if (record.chain_hash != AuditChainHash(result.head_hash, record)) {
          result.broken_at = record.sequence;
          result.reason = record.chain_hash.empty()
                              ? "the record has no chain hash"
                              : "its chain hash does not match its fields and the previous "
                                "record's hash (changed, or a record before it deleted or "
                                "inserted)";
          return result;
        }
      }
      result.head_sequence = record.sequence;
      result.head_hash = record.chain_hash;
    }
    after = page.back().sequence;
  }
}

}  // namespace devid::registry
