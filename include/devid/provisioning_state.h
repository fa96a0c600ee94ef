#pragma once

// What a device remembers of its last registration, so that it can tell when the service moved
// it to another hub (the enrollment's hub changed and its reprovisioning policy allowed the move).
//
// A device re-provisions when its hub refuses it (a hub admits a device only at its assigned
// hub): it registers again and compares the new assignment with the saved one.

#include <optional>
#include <string>

#include "base/result.h"
#include "devid/provisioning_client.h"

namespace devid::sdk {

// LoadAssignment reads the assignment SaveAssignment wrote at path, or nullopt when there is no
// file yet. Fails with kInvalidArgument when the file is not one SaveAssignment wrote.
Result<std::optional<Assignment>> LoadAssignment(const std::string& path);

// SaveAssignment replaces path (atomically, mode 0600) with assignment's registration ID, hub,
// device ID and substatus. Certificates and keys are never written there.
Status SaveAssignment(const std::string& path, const Assignment& assignment);

// HubMoved tells whether the service assigned current to another hub than previous.
bool HubMoved(const std::optional<Assignment>& previous, const Assignment& current);

}  // namespace devid::sdk
