#pragma once

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "pki/certificate.h"
#include "registry/enrollment.h"
#include "registry/registration.h"

namespace devid::api {

// The DPS service API's JSON shapes (azure-rest-api-specs DeviceProvisioningServices 2021-10-01
// service.json) to and from the registry's domain types. Parsers fail with kInvalidArgument and a
// message that names the offending field ("attestation.symmetricKey.primaryKey: …").

// IsValidRegistrationId tells whether id is 1–128 characters of A–Z a–z 0–9 - . _ : (the DPS rule).
bool IsValidRegistrationId(std::string_view id);

// X509CertificateInfoJson is DPS's X509CertificateInfo: subjectName, sha1Thumbprint,
// sha256Thumbprint, issuerName, notBeforeUtc, notAfterUtc, serialNumber, version.
nlohmann::json X509CertificateInfoJson(const pki::Certificate& certificate);

Result<registry::AttestationMechanism> AttestationFromJson(const nlohmann::json& json);
nlohmann::json AttestationToJson(const registry::AttestationMechanism& attestation);

Result<registry::Enrollment> EnrollmentFromJson(const nlohmann::json& json);
// EnrollmentToJson renders an enrollment; registration, when given, becomes registrationState.
nlohmann::json EnrollmentToJson(const registry::Enrollment& enrollment,
                                const registry::Registration* registration = nullptr);

Result<registry::EnrollmentGroup> EnrollmentGroupFromJson(const nlohmann::json& json);
nlohmann::json EnrollmentGroupToJson(const registry::EnrollmentGroup& group);

// RegistrationStateToJson renders a DeviceRegistrationState, as both APIs return it.
nlohmann::json RegistrationStateToJson(const registry::Registration& registration);

}  // namespace devid::api
