#pragma once

#include <string>

#include "base/result.h"
#include "devid/credential.h"

namespace devid::sdk {

// DeviceSasToken signs the DPS device token of registration_id in id_scope (protocol notes §2.2)
// with key, valid for an hour from the system clock, as the Azure SDKs make it; the DPS device API
// and EST simpleenroll take it in Authorization. Fails with key's error.
Result<std::string> DeviceSasToken(SasCredential& key, const std::string& id_scope,
                                   const std::string& registration_id);

}  // namespace devid::sdk
