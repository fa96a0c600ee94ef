#include "pki/crl_reason.h"

#include <array>
#include <charconv>
#include <string>
#include <utility>

namespace devid::pki {
namespace {

constexpr std::array<std::pair<int, std::string_view>, 9> kReasons = {{
    {kUnspecified, "unspecified"},
    {kKeyCompromise, "keyCompromise"},
    {kCaCompromise, "cACompromise"},
    {kAffiliationChanged, "affiliationChanged"},
    {kSuperseded, "superseded"},
    {kCessationOfOperation, "cessationOfOperation"},
    {kCertificateHold, "certificateHold"},
    {kPrivilegeWithdrawn, "privilegeWithdrawn"},
    {kAaCompromise, "aACompromise"},
}};

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view CrlReasonName(int reason) {
  for (const auto& [code, name] : kReasons) {
    if (code == reason) return name;
  }
  return {};
}

Result<int> ParseCrlReason(std::string_view text) {
  int number = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  for (const auto& [code, name] : kReasons) {
    bool numeric = ec == std::errc() && end == text.data() + text.size() && number == code;
    if (numeric || EqualsIgnoringCase(text, name)) return code;
  }
  std::string accepted;
  for (const auto& [code, name] : kReasons) {
    accepted += (accepted.empty() ? "" : ", ") + std::string(name);
  }
  return std::unexpected(InvalidArgument("unknown revocation reason \"" + std::string(text) +
                                         "\"; use one of " + accepted + " (RFC 5280 §5.3.1)"));
}

}  // namespace devid::pki
