#include "attestation/device_token.h"

#include <string>

namespace devid::attestation {

Result<pki::SasToken> ParseDeviceToken(std::string_view id_scope, std::string_view registration_id,
                                       std::string_view authorization, const Clock& clock) {
  if (authorization.empty()) {
    return std::unexpected(Unauthenticated("the request has no Authorization header"));
  }
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token, pki::ParseSasToken(authorization));
  std::string resource = std::string(id_scope) + "/registrations/" + std::string(registration_id);
  if (!pki::SasResourceMatches(token, resource)) {
    return std::unexpected(Unauthenticated("SAS token sr does not name " + resource));
  }
  if (token.key_name != "registration") {
    return std::unexpected(Unauthenticated("SAS token skn must be \"registration\""));
  }
  if (token.expiry < clock.UnixSeconds()) {
    return std::unexpected(
        Unauthenticated("SAS token expired (se=" + std::to_string(token.expiry) + ")"));
  }
  return token;
}

}  // namespace devid::attestation
