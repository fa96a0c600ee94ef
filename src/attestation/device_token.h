#pragma once

#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "pki/sas_token.h"

namespace devid::attestation {

// ParseDeviceToken parses a DPS device SAS token (protocol notes §2.2) and checks what does not
// depend on the key: sr names `{idScope}/registrations/{registrationId}`, skn is "registration",
// and se has not passed. Fails with kUnauthenticated naming the defect (never the signature).
Result<pki::SasToken> ParseDeviceToken(std::string_view id_scope, std::string_view registration_id,
                                       std::string_view authorization, const Clock& clock);

}  // namespace devid::attestation
