#include "sdk/device_sas_token.h"

#include "base/clock.h"
#include "base/url.h"
#include "ossl/base64.h"

namespace devid::sdk {
namespace {

constexpr int64_t kTokenLifetimeSeconds = 3600;  // as the Azure SDKs (protocol notes §2.1)

}  // namespace

Result<std::string> DeviceSasToken(SasCredential& key, const std::string& id_scope,
                                   const std::string& registration_id) {
  // sr is percent-encoded as the TPM path and the C SDK send it.
  std::string resource = PercentEncodeComponent(id_scope + "/registrations/" + registration_id);
  std::string expiry = std::to_string(SystemClock().UnixSeconds() + kTokenLifetimeSeconds);
  DEVID_ASSIGN_OR_RETURN(auto mac, key.HmacSha256(resource + "\n" + expiry));
  return "SharedAccessSignature sr=" + resource +
         "&sig=" + PercentEncodeComponent(ossl::Base64Encode(mac)) + "&se=" + expiry +
         "&skn=registration";
}

}  // namespace devid::sdk
