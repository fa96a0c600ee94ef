#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "registry/attestation_mechanism.h"

namespace devid::registry {

// ReprovisionPolicy says what happens when a provisioned device registers again (DPS semantics):
// update_hub_assignment re-runs allocation; migrate_device_data keeps the device's data.
struct ReprovisionPolicy {
  bool update_hub_assignment = true;
  bool migrate_device_data = true;
};

// EnrollmentSettings are what individual enrollments and groups share. JSON-valued fields are kept
// as serialized JSON text ("" when absent) so the registry stays free of a JSON library.
struct EnrollmentSettings {
  AttestationMechanism attestation;
  bool enabled = true;  // provisioningStatus
  bool iot_edge = false;
  std::string initial_twin_json;
  ReprovisionPolicy reprovision_policy;
  std::string allocation_policy;  // "hashed" | "static" | "geoLatency" | "custom"; "" = service default
  std::vector<std::string> iot_hubs;
  std::string iot_hub_host_name;  // for the static policy
  std::string custom_allocation_json;
  std::string etag;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
};

// Enrollment is an individual enrollment: one device, found by its registration ID.
struct Enrollment {
  std::string registration_id;
  std::string device_id;  // "" = use the registration ID
  std::string optional_device_information_json;
  EnrollmentSettings settings;
};

// EnrollmentGroup admits every device that proves possession of a key derived from, or a
// certificate chained to, the group's credential.
struct EnrollmentGroup {
  std::string enrollment_group_id;
  // registration_id_prefix (devid extension) narrows the group to registration IDs with this
  // prefix and indexes it, so group lookup costs one probe per prefix length instead of trying
  // every group. "" = the group may match any registration ID.
  std::string registration_id_prefix;
  EnrollmentSettings settings;
};

}  // namespace devid::registry
