#pragma once

namespace devid::api {

// DPS-style error codes: six digits, the first three the HTTP status. Stable API; documented in
// docs/errors.md. Never renumber one.
namespace error_code {
inline constexpr int kMalformedRequest = 400001;
inline constexpr int kInvalidJson = 400002;
inline constexpr int kInvalidField = 400003;
inline constexpr int kInvalidApiVersion = 400004;
inline constexpr int kRegistrationIdMismatch = 400005;
inline constexpr int kUnsupportedQuery = 400006;
inline constexpr int kInvalidCaCertificate = 400007;
inline constexpr int kVerificationCodeInvalid = 400008;
inline constexpr int kProofOfPossessionFailed = 400009;
inline constexpr int kCaReferenceNotVerified = 400010;
inline constexpr int kInvalidCommand = 400011;
inline constexpr int kInvalidTokenRequest = 400012;
inline constexpr int kMissingAuthorization = 401001;
inline constexpr int kUnauthorized = 401002;
inline constexpr int kEnrollmentDisabled = 401004;
inline constexpr int kInsufficientRights = 401005;
inline constexpr int kTokenNeedsCertificate = 401006;
inline constexpr int kTokenDenied = 403001;
inline constexpr int kNotFound = 404001;
inline constexpr int kRegistrationNotFound = 404002;
inline constexpr int kOperationNotFound = 404003;
inline constexpr int kRouteNotFound = 404004;
inline constexpr int kCertificateNotFound = 404005;
inline constexpr int kCaCertificateNotFound = 404006;
inline constexpr int kTokenAudienceNotFound = 404007;
inline constexpr int kMethodNotAllowed = 405001;
inline constexpr int kAlreadyExists = 409001;
inline constexpr int kCaCertificateInUse = 409002;
inline constexpr int kTokenAudienceAmbiguous = 409003;
inline constexpr int kTokenAudienceNotSymmetric = 409004;
inline constexpr int kEtagMismatch = 412001;
inline constexpr int kBodyTooLarge = 413001;
inline constexpr int kCommandTooLarge = 413002;
inline constexpr int kHeaderTooLarge = 431001;
inline constexpr int kThrottled = 429001;
inline constexpr int kInternal = 500000;
inline constexpr int kUnavailable = 503000;
inline constexpr int kCommandSignerUnavailable = 503001;
inline constexpr int kTokenSignerUnavailable = 503002;
}  // namespace error_code

}  // namespace devid::api
