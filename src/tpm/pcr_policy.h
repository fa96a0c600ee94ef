#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tpm/crypto.h"
#include "tpm/marshal.h"

namespace devid::tpm {

// PcrPolicy is an enrollment's measured-boot policy: the PCRs of one bank a quote must cover and
// the composite digests (H_bank of the selected PCR values, ascending PCR order, as a quote's
// pcrDigest) that are allowed. A quote matches when it selects exactly these PCRs of this bank
// and its pcrDigest is one of digests.
struct PcrPolicy {
  Alg bank = Alg::kSha256;
  std::vector<uint32_t> pcrs;  // ascending, unique, each < 24
  std::vector<Bytes> digests;  // each DigestSize(bank) bytes; at least one

  bool operator==(const PcrPolicy&) const = default;
};

// kMaxAllowedDigests bounds a policy's list of allowed digests (firmware versions in the fleet).
inline constexpr size_t kMaxAllowedDigests = 64;

// ParseBankName maps "sha1", "sha256", "sha384", "sha512" to the algorithm; fails with
// kInvalidArgument otherwise. BankName is its inverse.
Result<Alg> ParseBankName(std::string_view name);
std::string BankName(Alg bank);

// ValidatePcrPolicy checks p's invariants (a supported bank, 1–24 PCRs below 24 ascending and
// unique, 1–kMaxAllowedDigests digests of the bank's size) and fails with kInvalidArgument
// naming the first violation.
Status ValidatePcrPolicy(const PcrPolicy& p);

// FormatPcrPolicy renders p as the registry stores it: "<bank>:<pcr>,<pcr>…:<hex>,<hex>…"
// ("sha256:0,1,7:9f86…"). ParsePcrPolicy parses that form and validates it; "" is not a policy.
std::string FormatPcrPolicy(const PcrPolicy& p);
Result<PcrPolicy> ParsePcrPolicy(std::string_view text);

// ParseHexDigest decodes lowercase or uppercase hex; fails with kInvalidArgument on other text.
Result<Bytes> ParseHexDigest(std::string_view hex);

}  // namespace devid::tpm
