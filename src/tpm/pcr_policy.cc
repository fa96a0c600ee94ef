#include "tpm/pcr_policy.h"

#include <charconv>

#include "base/hex.h"

namespace devid::tpm {
namespace {

constexpr uint32_t kPcrCount = 24;  // TCG PC Client platform: PCRs 0–23

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

Result<Alg> ParseBankName(std::string_view name) {
  if (name == "sha1") return Alg::kSha1;
  if (name == "sha256") return Alg::kSha256;
  if (name == "sha384") return Alg::kSha384;
  if (name == "sha512") return Alg::kSha512;
  return std::unexpected(InvalidArgument("PCR bank \"" + std::string(name) +
                                         "\" is not sha1, sha256, sha384 or sha512"));
}

std::string BankName(Alg bank) {
  switch (bank) {
    case Alg::kSha1:
      return "sha1";
    case Alg::kSha256:
      return "sha256";
    case Alg::kSha384:
      return "sha384";
    case Alg::kSha512:
      return "sha512";
    default:
      return "unknown";
  }
}

Status ValidatePcrPolicy(const PcrPolicy& p) {
  size_t size = DigestSize(p.bank);
  if (size == 0) return std::unexpected(InvalidArgument("the PCR bank is not a supported hash"));
  if (p.pcrs.empty()) return std::unexpected(InvalidArgument("the policy selects no PCRs"));
  for (size_t i = 0; i < p.pcrs.size(); ++i) {
    if (p.pcrs[i] >= kPcrCount) {
      return std::unexpected(
          InvalidArgument("PCR " + std::to_string(p.pcrs[i]) + " does not exist (0–23)"));
    }
    if (i > 0 && p.pcrs[i] <= p.pcrs[i - 1]) {
      return std::unexpected(InvalidArgument("PCRs must be listed ascending, each once"));
    }
  }
  if (p.digests.empty() || p.digests.size() > kMaxAllowedDigests) {
    return std::unexpected(InvalidArgument("the policy needs 1 to " +
                                           std::to_string(kMaxAllowedDigests) + " digests"));
  }
  for (const Bytes& digest : p.digests) {
    if (digest.size() != size) {
      return std::unexpected(InvalidArgument("a digest is " + std::to_string(digest.size()) +
                                             " bytes; " + BankName(p.bank) + " digests are " +
                                             std::to_string(size)));
    }
  }
  return Ok();
}

std::string FormatPcrPolicy(const PcrPolicy& p) {
  std::string out = BankName(p.bank) + ":";
  for (size_t i = 0; i < p.pcrs.size(); ++i) out += (i ? "," : "") + std::to_string(p.pcrs[i]);
  out += ":";
  for (size_t i = 0; i < p.digests.size(); ++i) out += (i ? "," : "") + HexEncode(p.digests[i]);
  return out;
}

Result<Bytes> ParseHexDigest(std::string_view hex) {
  if (hex.empty() || hex.size() % 2 != 0) {
    return std::unexpected(InvalidArgument("a digest must be an even number of hex digits"));
  }
  Bytes out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigitValue(hex[i]), lo = HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::unexpected(InvalidArgument("a digest is not hex"));
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

Result<PcrPolicy> ParsePcrPolicy(std::string_view text) {
  std::vector<std::string_view> fields = Split(text, ':');
  if (fields.size() != 3) {
    return std::unexpected(InvalidArgument("a PCR policy is <bank>:<pcrs>:<digests>"));
  }
  PcrPolicy p;
  DEVID_ASSIGN_OR_RETURN(p.bank, ParseBankName(fields[0]));
  for (std::string_view pcr : Split(fields[1], ',')) {
    uint32_t n = 0;
    auto [end, ec] = std::from_chars(pcr.data(), pcr.data() + pcr.size(), n);
    if (ec != std::errc() || end != pcr.data() + pcr.size() || pcr.empty()) {
      return std::unexpected(InvalidArgument("PCR index \"" + std::string(pcr) + "\" is not a number"));
    }
    p.pcrs.push_back(n);
  }
  for (std::string_view hex : Split(fields[2], ',')) {
    DEVID_ASSIGN_OR_RETURN(Bytes digest, ParseHexDigest(hex));
    p.digests.push_back(std::move(digest));
  }
  DEVID_TRY(ValidatePcrPolicy(p));
  return p;
}

}  // namespace devid::tpm
