#pragma once

#include <optional>
#include <string>

#include "registry/enrollment.h"

namespace devid::attestation {

// VerifiedDevice is what an attestation verifier proved: the registration ID the device holds a
// credential for, and the enrollment (individual or group) that admits it.
struct VerifiedDevice {
  std::string registration_id;
  registry::AttestationType attestation_type = registry::AttestationType::kNone;
  std::optional<registry::Enrollment> enrollment;  // set for an individual enrollment
  std::optional<registry::EnrollmentGroup> group;  // set for a group enrollment

  // settings returns the matched enrollment's or group's settings.
  const registry::EnrollmentSettings& settings() const {
    return enrollment ? enrollment->settings : group->settings;
  }
};

}  // namespace devid::attestation
