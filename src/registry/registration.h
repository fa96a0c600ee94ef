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
  // device_key is the device's symmetric key (base64) when the service generated it: for TPM
  // attestation, the HMAC key it sent in the activation blob (protocol notes §4.2). "" = the
  // device authenticates with its enrollment's key.
  std::string device_key;
  // tpm_storage_root_key is the SRK (base64 TPM2B_PUBLIC) a TPM device registered with, so later
  // answers can wrap device_key for it again (protocol notes §4.2 step 4); "" otherwise.
  std::string tpm_storage_root_key;
  std::string etag;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
};

}  // namespace devid::registry
