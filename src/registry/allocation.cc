#include "registry/allocation.h"

#include <cstdint>

namespace devid::registry {
namespace {

// Fnv1a64 is a stable, well-spread, non-cryptographic hash: allocation needs the same answer on
// every node and every release, not secrecy.
uint64_t Fnv1a64(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

Result<Assignment> AssignHub(const EnrollmentSettings& settings, std::string_view registration_id,
                             const std::vector<std::string>& service_hubs,
                             const Registration* previous) {
  const std::vector<std::string>& hubs = settings.iot_hubs.empty() ? service_hubs : settings.iot_hubs;
  std::string hub;
  if (settings.allocation_policy == "static") {
    hub = !settings.iot_hub_host_name.empty() ? settings.iot_hub_host_name
          : hubs.empty()                      ? std::string()
                                              : hubs.front();
  } else if (!hubs.empty()) {
    hub = hubs[Fnv1a64(registration_id) % hubs.size()];
  }
  bool known = previous != nullptr && previous->status == "assigned" &&
               !previous->assigned_hub.empty();
  if (known && !settings.reprovision_policy.update_hub_assignment) {
    return Assignment{previous->assigned_hub, previous->substatus};
  }
  if (hub.empty()) {
    return std::unexpected(FailedPrecondition(
        "no IoT hub to assign " + std::string(registration_id) +
        " to: configure hubs for the service or the enrollment"));
  }
  if (!known) return Assignment{hub, "initialAssignment"};
  if (previous->assigned_hub == hub) return Assignment{hub, previous->substatus};
  return Assignment{hub, settings.reprovision_policy.migrate_device_data ? "deviceDataMigrated"
                                                                           : "deviceDataReset"};
}

}  // namespace devid::registry
