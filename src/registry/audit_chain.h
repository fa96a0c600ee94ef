#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "registry/audit.h"

namespace devid::registry {

class Registry;

// AuditChainHash returns the chain hash of record appended after a record whose chain hash is
// previous_hash ("" for the first chained record): lowercase hex of SHA-256 over
//
//   "devid-audit-v1" || field(previous_hash) || field(decimal time_us) || field(actor)
//   || field(action) || field(object) || field(outcome)
//
// where field(x) is x's length as 4 bytes big-endian followed by x's bytes. The length prefixes
// make the encoding unambiguous; record.sequence and record.chain_hash are not hashed (the chain
// itself fixes the order).
std::string AuditChainHash(std::string_view previous_hash, const AuditRecord& record);

// AuditVerification is what VerifyAuditChain found.
struct AuditVerification {
  int64_t records = 0;     // records read
  int64_t unchained = 0;   // leading records written before the chain existed (migration 6)
  int64_t head_sequence = 0;  // the last record's sequence (0 for an empty log)
  std::string head_hash;      // the last record's chain hash
  // broken_at is the sequence of the first record whose chain hash does not match (0 = intact):
  // a record changed, or the record before it deleted, or a record inserted before it.
  int64_t broken_at = 0;
  std::string reason;  // why broken_at is broken ("" when intact)
};

// VerifyAuditChain walks registry's whole audit log in sequence order (ListAudit pages) and
// recomputes every chain hash. Leading records with an empty chain hash are counted as
// unchained; after the first chained record, every record must carry the hash of its own fields
// chained to its predecessor's. It stops at the first broken link. It fails only when the log
// cannot be read.
Result<AuditVerification> VerifyAuditChain(Registry& registry);

}  // namespace devid::registry
