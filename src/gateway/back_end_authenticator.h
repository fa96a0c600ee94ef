#pragma once

#include <string>
#include <string_view>

#include "api/service_auth.h"
#include "base/clock.h"
#include "base/result.h"
#include "gateway/device_authenticator.h"
#include "registry/registry.h"

namespace devid::gateway {

// kBackEndUsernameSuffix ends a back end's MQTT username: `{hub}/$service`. A device's username
// is `{hub}/{deviceId}/?api-version=…`, so the two never collide.
inline constexpr std::string_view kBackEndUsernameSuffix = "/$service";

// kBackEndClientIdPrefix starts a back end's client id. Device IDs are registration IDs, which
// hold no '$' (DPS), so a back end cannot take over a device's session by reusing its client id,
// nor a device a back end's.
inline constexpr std::string_view kBackEndClientIdPrefix = "$service";

// kBackEndRight is the service right a policy needs to act as a back end on the gateway: reading
// every device's telemetry and sending to any device is the owner's reach, so only a policy with
// ServiceConfig (full control) may do it.
inline constexpr api::ServiceRight kBackEndRight = api::ServiceRight::kServiceConfig;

// IsBackEndUsername tells whether an MQTT username asks for back-end admission (`{hub}/$service`
// with a non-empty hub).
bool IsBackEndUsername(std::string_view username);

// BackEndAuthenticator admits a back-end (service) client: one that reads devices' telemetry and
// sends them cloud-to-device messages. It proves itself with a service SAS token made from one of
// the store's service access policies (setting `service.policies`, the keys the service API
// accepts), verified by api::ServiceAuthenticator: client id starting with kBackEndClientIdPrefix,
// username `{hub}/$service`, password `SharedAccessSignature sr={hub}&sig=…&se=…&skn={policy}`,
// not expired, signed with the policy's primary or secondary key, the policy granting
// kBackEndRight. {hub} must be the configured hub when there is one.
//
// It reads the policies from the store on every call (back ends connect rarely; the plugin
// throttles failures). Thread-safe; registry and clock must outlive it.
class BackEndAuthenticator {
 public:
  // BackEndAuthenticator reads policies from registry and checks expiry against clock.
  // required_hub "" accepts any hub name in the username.
  BackEndAuthenticator(registry::Registry& registry, const Clock& clock, std::string required_hub);

  // Authenticate admits the client as a back end (device_id = client_id, back_end_policy set) or
  // fails:
  // kUnauthenticated naming the reason (malformed username, client id, or token, wrong hub or sr,
  // expired, unknown policy, bad signature), kPermissionDenied when the policy lacks
  // kBackEndRight, another code when the store cannot be read or holds no valid policies. It never
  // echoes a key or signature. Callers must deny on any failure.
  Result<AdmittedDevice> Authenticate(std::string_view client_id, std::string_view username,
                                      std::string_view password);

  // Recheck tells whether an admitted back end may keep its session: its token has not expired
  // and its policy still exists in the store and grants kBackEndRight (a policy removed or its
  // right withdrawn ends the session). It does not re-verify the signature, so rotating a key
  // takes effect on the next connect.
  Status Recheck(const AdmittedDevice& back_end);

 private:
  Result<std::vector<api::AccessPolicy>> ReadPolicies();

  registry::Registry& registry_;
  const Clock& clock_;
  const std::string required_hub_;
};

}  // namespace devid::gateway
