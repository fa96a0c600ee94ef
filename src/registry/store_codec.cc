#include "registry/store_codec.h"

#include <algorithm>

#include "base/hex.h"

namespace devid::registry::store_codec {
int64_t ToMicros(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point FromMicros(int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

std::string_view AttestationTypeName(AttestationType type) {
  switch (type) {
    case AttestationType::kNone:
      return "none";
    case AttestationType::kSymmetricKey:
      return "symmetricKey";
    case AttestationType::kX509:
      return "x509";
    case AttestationType::kTpm:
      return "tpm";
  }
  return "none";
}

Result<AttestationType> ParseAttestationType(std::string_view name) {
  if (name == "none") return AttestationType::kNone;
  if (name == "symmetricKey") return AttestationType::kSymmetricKey;
  if (name == "x509") return AttestationType::kX509;
  if (name == "tpm") return AttestationType::kTpm;
  return std::unexpected(Internal("reading the registry: unknown attestation type \"" +
                                  std::string(name) + "\" in the database"));
}

std::string_view CertificateSourceName(CertificateSource source) {
  switch (source) {
    case CertificateSource::kIssued:
      return "issued";
    case CertificateSource::kObserved:
      return "observed";
  }
  return "issued";
}

Result<CertificateSource> ParseCertificateSource(std::string_view name) {
  if (name == "issued") return CertificateSource::kIssued;
  if (name == "observed") return CertificateSource::kObserved;
  return std::unexpected(Internal("reading the registry: unknown certificate source \"" +
                                  std::string(name) + "\" in the database"));
}

Result<std::string> DecodeHexBytes(std::string_view text) {
  const Error malformed = Internal("reading the registry: a binary value is not hex");
  if (text.size() % 2 != 0) return std::unexpected(malformed);
  std::string bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = HexDigitValue(text[i]);
    int lo = HexDigitValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::unexpected(malformed);
    bytes += static_cast<char>(hi << 4 | lo);
  }
  return bytes;
}

std::string JoinHubs(const std::vector<std::string>& hubs) {
  std::string out;
  for (const std::string& hub : hubs) {
    if (!out.empty()) out += '\n';
    out += hub;
  }
  return out;
}

std::vector<std::string> SplitHubs(std::string_view joined) {
  std::vector<std::string> hubs;
  while (!joined.empty()) {
    size_t end = joined.find('\n');
    hubs.emplace_back(joined.substr(0, end));
    if (end == std::string_view::npos) break;
    joined.remove_prefix(end + 1);
  }
  return hubs;
}

std::string EncodeContinuation(std::string_view key) { return HexEncode(key); }

Result<std::string> DecodeContinuation(std::string_view token) {
  const Error malformed = InvalidArgument("reading the continuation token: it is malformed");
  if (token.size() % 2 != 0) return std::unexpected(malformed);
  std::string key;
  key.reserve(token.size() / 2);
  for (size_t i = 0; i < token.size(); i += 2) {
    int hi = HexDigitValue(token[i]);
    int lo = HexDigitValue(token[i + 1]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::unexpected(malformed);
    key += static_cast<char>(hi << 4 | lo);
  }
  return key;
}

std::string NotFoundMessage(std::string_view noun, std::string_view id) {
  return std::string(noun) + " \"" + std::string(id) + "\" not found";
}

int ClampPageSize(int max_items) { return std::clamp(max_items, 1, kMaxPageItems); }

Status ValidateId(std::string_view what, std::string_view id) {
  if (id.empty()) return std::unexpected(InvalidArgument(std::string(what) + " is empty"));
  return Ok();
}

Status ValidateSettings(const EnrollmentSettings& settings) {
  for (const std::string& hub : settings.iot_hubs) {
    if (hub.empty() || hub.find('\n') != std::string::npos) {
      return std::unexpected(
          InvalidArgument("iotHubs holds an empty name or one with a line break"));
    }
  }
  return Ok();
}

Status ValidateCertificate(const CertificateRecord& record) {
  DEVID_TRY(ValidateId("the certificate's SHA-256 thumbprint", record.sha256_thumbprint));
  return ValidateId("the certificate's serial", record.serial);
}

CertificateRecord IssuedRecord(const CertificateRecord& record,
                               std::chrono::system_clock::time_point now) {
  CertificateRecord stored = record;
  stored.source = CertificateSource::kIssued;
  stored.revoked = false;
  stored.revocation_reason = 0;
  stored.revoked_at = {};
  stored.first_seen = stored.last_seen = FromMicros(ToMicros(now));
  return stored;
}

CertificateRecord ObservedRecord(const CertificateRecord& record,
                                 std::chrono::system_clock::time_point now) {
  CertificateRecord stored = IssuedRecord(record, now);
  stored.source = CertificateSource::kObserved;
  return stored;
}

Status ValidateIssueAction(std::string_view action) {
  if (action == kAuditCertificateIssue || action == kAuditCertificateRenew) return Ok();
  return std::unexpected(InvalidArgument(
      "recording a certificate: the audit action \"" + std::string(action) + "\" is neither " +
      std::string(kAuditCertificateIssue) + " nor " + std::string(kAuditCertificateRenew)));
}

Status ValidateRevocationReason(int reason) {
  if ((reason >= 0 && reason <= 6) || reason == 9 || reason == 10) return Ok();
  return std::unexpected(InvalidArgument("revoking certificates: " + std::to_string(reason) +
                                         " is not a CRL reason a revocation may carry (RFC 5280 "
                                         "§5.3.1: 0-6, 9, 10)"));
}

std::string RevocationOutcome(int reason) { return "success; reason " + std::to_string(reason); }

Status ValidateDeviceCommand(const DeviceCommand& command,
                             std::chrono::system_clock::time_point now) {
  DEVID_TRY(ValidateId("the command's device ID", command.device_id));
  DEVID_TRY(ValidateId("the command's body hash", command.body_sha256));
  // Stores keep microseconds: compare what would be stored.
  if (std::chrono::floor<std::chrono::microseconds>(command.expires) <= now) {
    return std::unexpected(InvalidArgument("signing a command for " + command.device_id +
                                           ": it would expire before it is signed"));
  }
  return Ok();
}

std::string CommandOutcome(int64_t sequence) {
  return "success; sequence " + std::to_string(sequence);
}

}  // namespace devid::registry::store_codec
