#pragma once

#include <chrono>
#include <string>

#include "registry/attestation_mechanism.h"

namespace devid::registry {

// Registration is the state of one device's provisioning (DPS DeviceRegistrationState), keyed by
// registration ID. It is created or replaced when the device registers.
struct Registration {
  std::string registration_id;
  std::string device_id;
  std::string assigned_hub;
  std::string status;     // "assigned" | "failed" | ...
  std::string substatus;  // "initialAssignment" | "reprovisionedToInitialAssignment" | ...
  std::string operation_id;
  std::string enrollment_group_id;  // "" for an individual enrollment
  AttestationType attestation_type = AttestationType::kNone;
  std::string payload_json;        // what the device sent, echoed back
  std::string response_payload_json;
  int error_code = 0;
  std::string error_message;
  std::string etag;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
};

}  // namespace devid::registry
