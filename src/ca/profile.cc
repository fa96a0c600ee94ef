#include "ca/profile.h"

#include <array>
#include <string>

namespace devid::ca {
namespace {

using std::chrono::hours;
constexpr hours kDay(24);

constexpr std::array<Profile, 7> kProfiles = {{
    {.name = kRootCaProfile,
     .ca = true,
     .key_usage = "critical,keyCertSign,cRLSign",
     .validity = kDay * 365 * 20},
    // pathlen 0: an issuing CA signs end entities only (RFC 5280 §4.2.1.9).
    {.name = kIntermediateCaProfile,
     .ca = true,
     .path_length = 0,
     .key_usage = "critical,keyCertSign,cRLSign",
     .validity = kDay * 365 * 10,
     .revocation_pointers = true},
    {.name = kDeviceClientProfile,
     .key_usage = "critical,digitalSignature",
     .extended_key_usage = "clientAuth",
     .validity = kDay * 365,
     .revocation_pointers = true,
     .requires_common_name = true},
    {.name = kServerProfile,
     .key_usage = "critical,digitalSignature",
     .extended_key_usage = "serverAuth",
     .validity = kDay * 365,
     .revocation_pointers = true,
     .requires_subject_alt_name = true},
    // A delegated responder's own status is not checked (RFC 6960 §4.2.2.2.1), so keep it short.
    {.name = kOcspSignerProfile,
     .key_usage = "critical,digitalSignature",
     .extended_key_usage = "OCSPSigning",
     .validity = kDay * 90,
     .ocsp_no_check = true,
     .requires_common_name = true},
    // Devices pin this certificate (docs/commands.md), so it lives as long as a server's; the
    // server renews it with the same key well before it expires.
    {.name = kCommandSignerProfile,
     .key_usage = "critical,digitalSignature",
     .extended_key_usage = kCommandSigningEku,
     .validity = kDay * 365,
     .requires_common_name = true},
    // Peers pin it as devices pin the command signer (docs/tokens.md).
    {.name = kTokenSignerProfile,
     .key_usage = "critical,digitalSignature",
     .extended_key_usage = kTokenSigningEku,
     .validity = kDay * 365,
     .requires_common_name = true},
}};

}  // namespace

Result<const Profile*> FindProfile(std::string_view name) {
  for (const Profile& profile : kProfiles) {
    if (profile.name == name) return &profile;
  }
  std::string known;
  for (const Profile& profile : kProfiles) {
    known += (known.empty() ? "" : ", ") + std::string(profile.name);
  }
  return std::unexpected(
      InvalidArgument("unknown certificate profile \"" + std::string(name) + "\" (" + known + ")"));
}

}  // namespace devid::ca
