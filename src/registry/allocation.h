#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "registry/enrollment.h"
#include "registry/registration.h"

namespace devid::registry {

// Assignment is where a registering device goes and how DPS describes the move.
struct Assignment {
  std::string hub;
  std::string substatus;  // initialAssignment | deviceDataMigrated | deviceDataReset | unchanged
};

// AssignHub applies the enrollment's allocation and reprovisioning policies (DPS semantics).
// The candidate hubs are the enrollment's iotHubs, else service_hubs. `hashed` (the default) picks
// one by a stable hash of the registration ID, so a device lands on the same hub every time while
// the list is unchanged; `static` takes iotHubHostName, else the first candidate. A device already
// registered keeps its hub unless updateHubAssignment is set; when its hub changes the substatus
// says whether its data was migrated or reset. Fails with kFailedPrecondition when there is no
// hub to assign.
Result<Assignment> AssignHub(const EnrollmentSettings& settings, std::string_view registration_id,
                             const std::vector<std::string>& service_hubs,
                             const Registration* previous);

}  // namespace devid::registry
