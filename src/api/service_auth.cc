#include "api/service_auth.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace devid::api {
namespace {

constexpr std::pair<ServiceRight, std::string_view> kRightNames[] = {
    {ServiceRight::kServiceConfig, "ServiceConfig"},
    {ServiceRight::kEnrollmentRead, "EnrollmentRead"},
    {ServiceRight::kEnrollmentWrite, "EnrollmentWrite"},
    {ServiceRight::kRegistrationStatusRead, "RegistrationStatusRead"},
    {ServiceRight::kRegistrationStatusWrite, "RegistrationStatusWrite"},
};

std::string_view RightName(ServiceRight right) {
  for (const auto& [r, name] : kRightNames) {
    if (r == right) return name;
  }
  return "?";
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool KeyVerifies(const pki::SasToken& token, const std::string& key_base64) {
  if (key_base64.empty()) return false;
  auto key = ossl::Base64Decode(key_base64);
  return key && pki::VerifySasSignature(token, *key).has_value();
}

}  // namespace

bool AccessPolicy::Grants(ServiceRight right) const {
  return std::find(rights.begin(), rights.end(), right) != rights.end();
}

std::vector<ServiceRight> AllServiceRights() {
  std::vector<ServiceRight> out;
  for (const auto& [right, name] : kRightNames) out.push_back(right);
  return out;
}

std::string PoliciesToJson(const std::vector<AccessPolicy>& policies) {
  nlohmann::json out = nlohmann::json::array();
  for (const AccessPolicy& p : policies) {
    nlohmann::json rights = nlohmann::json::array();
    for (ServiceRight r : p.rights) rights.push_back(RightName(r));
    out.push_back({{"keyName", p.name},
                   {"primaryKey", p.primary_key},
                   {"secondaryKey", p.secondary_key},
                   {"rights", rights}});
  }
  return out.dump();
}

Result<std::vector<AccessPolicy>> PoliciesFromJson(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_array()) return std::unexpected(InvalidArgument("access policies: not a JSON array"));
  std::vector<AccessPolicy> out;
  for (const auto& p : json) {
    if (!p.is_object() || !p.value("keyName", nlohmann::json()).is_string()) {
      return std::unexpected(InvalidArgument("access policies: each needs a keyName"));
    }
    AccessPolicy policy;
    policy.name = p["keyName"].get<std::string>();
    policy.primary_key = p.value("primaryKey", "");
    policy.secondary_key = p.value("secondaryKey", "");
    for (const auto& r : p.value("rights", nlohmann::json::array())) {
      bool known = false;
      for (const auto& [right, name] : kRightNames) {
        if (r.is_string() && r.get<std::string>() == name) {
          policy.rights.push_back(right);
          known = true;
        }
      }
      if (!known) {
        return std::unexpected(
            InvalidArgument("access policy " + policy.name + ": unknown right " + r.dump()));
      }
    }
    out.push_back(std::move(policy));
  }
  return out;
}

Result<AccessPolicy> ServiceAuthenticator::Authenticate(std::string_view authorization,
                                                        std::string_view path,
                                                        ServiceRight needed) const {
  if (authorization.empty()) {
    return std::unexpected(Unauthenticated("the request has no Authorization header"));
  }
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token, pki::ParseSasToken(authorization));
  // sr is the host, or the host and a prefix of the path ending at a segment boundary.
  std::string resource = Lower(host_name_) + Lower(path);
  std::string sr = Lower(token.resource);
  while (!sr.empty() && sr.back() == '/') sr.pop_back();
  bool sr_ok = resource.starts_with(sr) && sr.size() >= host_name_.size() &&
               (resource.size() == sr.size() || resource[sr.size()] == '/');
  if (!sr_ok) {
    return std::unexpected(
        Unauthenticated("SAS token sr does not cover this service endpoint"));
  }
  if (token.expiry < clock_.UnixSeconds()) {
    return std::unexpected(
        Unauthenticated("SAS token expired (se=" + std::to_string(token.expiry) + ")"));
  }
  std::shared_ptr<const std::vector<AccessPolicy>> policies = policies_.Get();
  const AccessPolicy* policy = nullptr;
  for (const AccessPolicy& p : *policies) {
    if (p.name == token.key_name) policy = &p;
  }
  if (policy == nullptr) {
    return std::unexpected(Unauthenticated("SAS token skn \"" + token.key_name +
                                           "\" names no shared access policy"));
  }
  bool primary = KeyVerifies(token, policy->primary_key);
  bool secondary = KeyVerifies(token, policy->secondary_key);
  if (!primary && !secondary) {
    return std::unexpected(
        Unauthenticated("SAS token signature does not verify for policy " + policy->name));
  }
  if (!policy->Grants(needed)) {
    return std::unexpected(PermissionDenied("policy " + policy->name + " lacks the " +
                                            std::string(RightName(needed)) + " right"));
  }
  return *policy;
}

std::expected<std::string, Response> AuthorizeServiceRequest(const ServiceAuthenticator& auth,
                                                             const Request& request,
                                                             const Target& target,
                                                             ServiceRight needed,
                                                             std::string_view tracking_id) {
  auto policy = auth.Authenticate(request.HeaderValue("authorization"), target.path, needed);
  if (policy) return "service:" + policy->name;
  spdlog::info("service request refused: {} {} code={} reason=\"{}\" trackingId={}",
               request.method, target.path, ErrorCodeName(policy.error().code()),
               policy.error().message(), tracking_id);
  return std::unexpected(ErrorResponse(policy.error().code() == ErrorCode::kPermissionDenied
                                           ? error_code::kInsufficientRights
                                           : error_code::kUnauthorized,
                                       policy.error().message(), tracking_id));
}

}  // namespace devid::api
