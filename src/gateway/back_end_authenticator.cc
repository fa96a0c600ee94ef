#include "gateway/back_end_authenticator.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "pki/sas_token.h"

namespace devid::gateway {
namespace {

std::string_view HubOf(std::string_view username) {
  return username.substr(0, username.size() - kBackEndUsernameSuffix.size());
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) == std::tolower(y);
  });
}

}  // namespace

bool IsBackEndUsername(std::string_view username) {
  return username.size() > kBackEndUsernameSuffix.size() &&
         username.ends_with(kBackEndUsernameSuffix) &&
         HubOf(username).find('/') == std::string_view::npos;
}

BackEndAuthenticator::BackEndAuthenticator(registry::Registry& registry, const Clock& clock,
                                           std::string required_hub)
    : registry_(registry), clock_(clock), required_hub_(std::move(required_hub)) {}

Result<std::vector<api::AccessPolicy>> BackEndAuthenticator::ReadPolicies() {
  DEVID_ASSIGN_OR_RETURN(std::optional<std::string> json,
                         registry_.GetSetting(api::kPoliciesSetting));
  if (!json) {
    return std::unexpected(FailedPrecondition("the store holds no service access policies"));
  }
  auto policies = api::PoliciesFromJson(*json);
  if (!policies) {
    return std::unexpected(FailedPrecondition("reading the store's service access policies: " +
                                              policies.error().message()));
  }
  return policies;
}

Result<AdmittedDevice> BackEndAuthenticator::Authenticate(std::string_view client_id,
                                                          std::string_view username,
                                                          std::string_view password) {
  if (!IsBackEndUsername(username)) {
    return std::unexpected(Unauthenticated("back end \"" + std::string(client_id) +
                                           "\": the username is not {hub}/$service"));
  }
  if (!client_id.starts_with(kBackEndClientIdPrefix)) {
    return std::unexpected(Unauthenticated("back end \"" + std::string(client_id) +
                                           "\": the client id does not start with $service"));
  }
  std::string_view hub = HubOf(username);
  if (!required_hub_.empty() && !EqualsIgnoringCase(hub, required_hub_)) {
    return std::unexpected(Unauthenticated("back end \"" + std::string(client_id) +
                                           "\": the username names another hub than " +
                                           required_hub_));
  }
  DEVID_ASSIGN_OR_RETURN(std::vector<api::AccessPolicy> policies, ReadPolicies());
  // The service API's check, with the hub as the host and no path: sr must be the hub.
  api::ServiceAuthenticator service(std::string(hub), std::move(policies), clock_);
  auto policy = service.Authenticate(password, "", kBackEndRight);
  if (!policy) {
    return std::unexpected(Error(policy.error().code(), "back end \"" + std::string(client_id) +
                                                            "\": " + policy.error().message()));
  }
  // The token parsed in Authenticate; parse again only for its expiry.
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token, pki::ParseSasToken(password));
  return AdmittedDevice{.device_id = std::string(client_id),
                        .hub = std::string(hub),
                        .token_expiry = token.expiry,
                        .back_end_policy = policy->name};
}

Status BackEndAuthenticator::Recheck(const AdmittedDevice& back_end) {
  if (back_end.token_expiry < clock_.UnixSeconds()) {
    return std::unexpected(Unauthenticated("the back end's SAS token expired"));
  }
  DEVID_ASSIGN_OR_RETURN(std::vector<api::AccessPolicy> policies, ReadPolicies());
  for (const api::AccessPolicy& p : policies) {
    if (p.name == back_end.back_end_policy && p.Grants(kBackEndRight)) return Ok();
  }
  return std::unexpected(Unauthenticated("service access policy " + back_end.back_end_policy +
                                         " is gone or no longer grants ServiceConfig"));
}

}  // namespace devid::gateway
