#pragma once

#include <chrono>
#include <string_view>

#include "base/result.h"
#include "registry/ca_certificate.h"

// What both SQL back ends decide the same way about CA certificates (registry.h).
namespace devid::registry::ca_certificate_store {

// ValidateUpload fails with kInvalidArgument when a certificate to store lacks its name, DER or
// SHA-256 thumbprint.
Status ValidateUpload(const CaCertificate& certificate);

// Unverified is certificate as PutCaCertificate stores it: not verified, no pending code.
CaCertificate Unverified(const CaCertificate& certificate);

// VerificationRefusal explains why VerifyCaCertificate consumed nothing, given the row as it is
// now: kFailedPrecondition naming the condition that failed (registry.h).
Error VerificationRefusal(const CaCertificate& current, std::string_view sha256_thumbprint,
                          std::string_view code_hash, std::chrono::system_clock::time_point now);

// ReferencedMessage is the kFailedPrecondition message for deleting name while group_id uses it.
std::string ReferencedMessage(std::string_view name, std::string_view group_id);

}  // namespace devid::registry::ca_certificate_store
