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

}  // namespace devid::registry::store_codec
