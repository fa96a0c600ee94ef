#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "registry/certificate_record.h"
#include "registry/device_command.h"
#include "registry/enrollment.h"

// How the SQL back ends store domain values, shared so both dialects read and write the same
// representation (and `devid migrate` can copy rows verbatim).
namespace devid::registry::store_codec {

// kMaxPageItems caps a page; kEtagBytes is how many random bytes make an etag (hex-encoded).
inline constexpr int kMaxPageItems = 1000;
inline constexpr size_t kEtagBytes = 16;

// ToMicros / FromMicros convert times to and from whole microseconds since the Unix epoch.
int64_t ToMicros(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point FromMicros(int64_t us);

// AttestationTypeName returns DPS's attestation.type value; ParseAttestationType reverses it and
// fails with kInternal on a name no devid writes.
std::string_view AttestationTypeName(AttestationType type);
Result<AttestationType> ParseAttestationType(std::string_view name);

// CertificateSourceName returns the stored name of a certificate source ("issued",
// "observed"); ParseCertificateSource reverses it and fails with kInternal on any other name.
std::string_view CertificateSourceName(CertificateSource source);
Result<CertificateSource> ParseCertificateSource(std::string_view name);

// DecodeHexBytes turns hex digits (either case) into the bytes they spell; kInternal when text is
// not an even number of hex digits (it reads what a store wrote, never client input).
Result<std::string> DecodeHexBytes(std::string_view text);

// JoinHubs stores hub names one per line; SplitHubs reverses it.
std::string JoinHubs(const std::vector<std::string>& hubs);
std::vector<std::string> SplitHubs(std::string_view joined);

// EncodeContinuation makes the opaque token for "after this key" (hex); DecodeContinuation
// reverses it and fails with kInvalidArgument on a malformed token or one holding a NUL (no key
// does: PostgreSQL text cannot hold one).
std::string EncodeContinuation(std::string_view key);
Result<std::string> DecodeContinuation(std::string_view token);

// NotFoundMessage is the kNotFound message for a missing row: `<noun> "<id>" not found`.
std::string NotFoundMessage(std::string_view noun, std::string_view id);

// ClampPageSize bounds a requested page size to [1, kMaxPageItems].
int ClampPageSize(int max_items);

// ValidateId fails with kInvalidArgument when id is empty ("<what> is empty").
Status ValidateId(std::string_view what, std::string_view id);

// ValidateSettings fails with kInvalidArgument when a hub name is empty or holds a line break
// (JoinHubs could not store it).
Status ValidateSettings(const EnrollmentSettings& settings);

// ValidateCertificate fails with kInvalidArgument when a record to store lacks its SHA-256
// thumbprint or its serial.
Status ValidateCertificate(const CertificateRecord& record);

// IssuedRecord is record as RecordCertificate stores it at now: source kIssued, not revoked,
// first and last seen now. ObservedRecord is the same with source kObserved.
CertificateRecord IssuedRecord(const CertificateRecord& record,
                               std::chrono::system_clock::time_point now);
CertificateRecord ObservedRecord(const CertificateRecord& record,
                                 std::chrono::system_clock::time_point now);

// ValidateIssueAction fails with kInvalidArgument unless action is kAuditCertificateIssue or
// kAuditCertificateRenew.
Status ValidateIssueAction(std::string_view action);

// ValidateRevocationReason fails with kInvalidArgument unless reason is a CRLReason a revocation
// may carry (RFC 5280 §5.3.1: 0-6, 9, 10; 7 is unused and removeFromCRL (8) is for delta CRLs).
Status ValidateRevocationReason(int reason);

// RevocationOutcome is the audit outcome of revoking with reason: "success; reason <n>".
std::string RevocationOutcome(int reason);

// ValidateDeviceCommand fails with kInvalidArgument when a command to store has no device ID or
// body hash, or expires is not after now.
Status ValidateDeviceCommand(const DeviceCommand& command,
                             std::chrono::system_clock::time_point now);

// CommandOutcome is the audit outcome of a signed command: "success; sequence <n>".
std::string CommandOutcome(int64_t sequence);

}  // namespace devid::registry::store_codec
