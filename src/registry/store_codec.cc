#include "registry/store_codec.h"

#include <algorithm>

namespace devid::registry::store_codec {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

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

std::string EncodeContinuation(std::string_view key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size() * 2);
  for (unsigned char b : key) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

Result<std::string> DecodeContinuation(std::string_view token) {
  const Error malformed = InvalidArgument("reading the continuation token: it is malformed");
  if (token.size() % 2 != 0) return std::unexpected(malformed);
  std::string key;
  key.reserve(token.size() / 2);
  for (size_t i = 0; i < token.size(); i += 2) {
    int hi = HexValue(token[i]);
    int lo = HexValue(token[i + 1]);
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
