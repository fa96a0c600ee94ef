#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.h"
#include "api/target.h"
#include "base/clock.h"
#include "base/result.h"
#include "base/shared_value.h"

namespace devid::api {

// ServiceRight is one permission of a shared access policy (DPS how-to-control-access).
enum class ServiceRight {
  kServiceConfig,
  kEnrollmentRead,
  kEnrollmentWrite,
  kRegistrationStatusRead,
  kRegistrationStatusWrite,
};

// AccessPolicy is a named shared access policy: two base64 keys and the rights they grant.
struct AccessPolicy {
  std::string name;
  std::string primary_key;
  std::string secondary_key;
  std::vector<ServiceRight> rights;

  bool Grants(ServiceRight right) const;
  bool operator==(const AccessPolicy&) const = default;
};

// kPoliciesSetting names the store setting that holds the policies (PoliciesToJson), read by
// every node and by the gateway.
inline constexpr std::string_view kPoliciesSetting = "service.policies";

// PoliciesToJson / PoliciesFromJson store policies as a JSON settings value.
std::string PoliciesToJson(const std::vector<AccessPolicy>& policies);
Result<std::vector<AccessPolicy>> PoliciesFromJson(std::string_view text);

// AllServiceRights lists every right (the owner policy's).
std::vector<ServiceRight> AllServiceRights();

// ServiceAuthenticator checks service-API SAS tokens (protocol notes §2.5): sr is the service host
// name, optionally followed by a path prefix of the request (matched by whole segments), skn names
// a policy, the signature verifies with one of its keys, and se has not passed.
class ServiceAuthenticator {
 public:
  ServiceAuthenticator(std::string host_name, std::vector<AccessPolicy> policies,
                       const Clock& clock)
      : host_name_(std::move(host_name)), policies_(std::move(policies)), clock_(clock) {}

  // Authenticate returns (a copy of) the policy the request is signed with. Fails with
  // kUnauthenticated (missing, malformed, expired, wrong sr, unknown policy, bad signature) or
  // kPermissionDenied (the policy lacks `needed`).
  Result<AccessPolicy> Authenticate(std::string_view authorization, std::string_view path,
                                    ServiceRight needed) const;

  // SetPolicies replaces the policies (a node re-reading its store's settings); an empty list
  // refuses every request. Requests being checked finish with the policies they started with.
  void SetPolicies(std::vector<AccessPolicy> policies) { policies_.Set(std::move(policies)); }

 private:
  std::string host_name_;
  SharedValue<std::vector<AccessPolicy>> policies_;
  const Clock& clock_;
};

// AuthorizeServiceRequest authenticates request's service SAS token for needed and returns the
// actor for the audit log ("service:<policy>"), or the refusal to send (401002, or 401005 when the
// policy lacks the right), logged without the token.
std::expected<std::string, Response> AuthorizeServiceRequest(const ServiceAuthenticator& auth,
                                                             const Request& request,
                                                             const Target& target,
                                                             ServiceRight needed,
                                                             std::string_view tracking_id);

}  // namespace devid::api
