#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/registry_cache.h"

namespace devid::gateway {

// AdmittedDevice is who DeviceAuthenticator let in.
struct AdmittedDevice {
  std::string device_id;
  std::string hub;  // the registration's assigned hub
  // token_expiry is the SAS token's se (Unix seconds): the session must end by then.
  int64_t token_expiry = 0;
};

// DeviceAuthenticator decides whether an MQTT CONNECT is a provisioned device proving its key, as
// IoT Hub does (protocol notes §2.4, §5.1). It reads the registry only.
//
// SAS admission: client id = device ID; username `{hub}/{deviceId}/?api-version=…`; password
// `SharedAccessSignature sr={hub}%2Fdevices%2F{deviceId}&sig=…&se=…` without skn, not expired.
// The device's registration (looked up by registration ID = device ID) must have status
// "assigned", that device ID, and assigned_hub equal (ignoring ASCII case) to the hub in the
// username and sr, and to the configured hub when there is one. Its individual enrollment or
// enrollment group must still exist and be enabled. The key is the registration's device_key when
// the service generated one (TPM), else the enrollment's primary or secondary key, else the key
// derived from the group's primary or secondary key (§2.3).
//
// Thread-safe; clock and registry must outlive it.
class DeviceAuthenticator {
 public:
  // DeviceAuthenticator reads registry (through its cache) and checks expiry against clock.
  // required_hub "" admits devices of any hub.
  DeviceAuthenticator(RegistryCache& registry, const Clock& clock, std::string required_hub);

  // AuthenticateSas admits the client or fails: kUnauthenticated naming the reason (malformed
  // username or token, client id mismatch, unknown or unassigned device, disabled or deleted
  // enrollment, wrong hub, expired token, bad signature) without echoing a key or signature;
  // another code when the registry cannot be read. Callers must deny on any failure.
  Result<AdmittedDevice> AuthenticateSas(std::string_view client_id, std::string_view username,
                                         std::string_view password);

  // Recheck tells whether an admitted device may keep its session: its token has not expired, its
  // registration is still assigned to the same hub under the same device ID, and its enrollment or
  // group still exists and is enabled. It fails as AuthenticateSas does; callers must close the
  // session on any failure. It does not re-verify the signature.
  Status Recheck(const AdmittedDevice& device);

 private:
  // AdmissibleSettings checks the registration of device_id against hub and returns the settings
  // of its enrollment or group when it may be admitted.
  Result<registry::EnrollmentSettings> AdmissibleSettings(const registry::Registration& reg,
                                                          std::string_view device_id,
                                                          std::string_view hub);
  // FindRegistration reads device_id's registration; kUnauthenticated when there is none.
  Result<registry::Registration> FindRegistration(std::string_view device_id);

  RegistryCache& registry_;
  const Clock& clock_;
  const std::string required_hub_;
};

// DeviceIdFromUsername returns the device ID an IoT Hub MQTT username names
// (`{hub}/{deviceId}/?…`), or "" when it is not of that form.
std::string_view DeviceIdFromUsername(std::string_view username);

}  // namespace devid::gateway
