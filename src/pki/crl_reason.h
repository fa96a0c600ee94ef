#pragma once

#include <string_view>

#include "base/result.h"

namespace devid::pki {

// CRLReason codes (RFC 5280 §5.3.1). 7 is unused; 8 (removeFromCRL) only appears in delta CRLs,
// so devid neither accepts it for a revocation nor writes it.
enum CrlReason : int {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kCertificateHold = 6,
  kPrivilegeWithdrawn = 9,
  kAaCompromise = 10,
};

// CrlReasonName returns RFC 5280's name for a reason code ("keyCompromise"), or "" for none.
std::string_view CrlReasonName(int reason);

// ParseCrlReason accepts a reason by RFC 5280 name (case-insensitive: "keyCompromise",
// "keycompromise") or number ("1"). Fails with kInvalidArgument naming the accepted reasons.
Result<int> ParseCrlReason(std::string_view text);

}  // namespace devid::pki
