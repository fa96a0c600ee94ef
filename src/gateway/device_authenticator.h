#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::gateway {

// AdmittedDevice is who DeviceAuthenticator let in.
struct AdmittedDevice {
  std::string device_id;
  std::string hub;  // the registration's assigned hub
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
// Thread-safe when registry is; clock and registry must outlive it.
class DeviceAuthenticator {
 public:
  // DeviceAuthenticator reads registry and checks expiry against clock. required_hub "" admits
  // devices of any hub.
  DeviceAuthenticator(registry::Registry& registry, const Clock& clock, std::string required_hub);

  // AuthenticateSas admits the client or fails: kUnauthenticated naming the reason (malformed
  // username or token, client id mismatch, unknown or unassigned device, disabled or deleted
  // enrollment, wrong hub, expired token, bad signature) without echoing a key or signature;
  // another code when the registry cannot be read. Callers must deny on any failure.
  Result<AdmittedDevice> AuthenticateSas(std::string_view client_id, std::string_view username,
                                         std::string_view password);

 private:
  registry::Registry& registry_;
  const Clock& clock_;
  const std::string required_hub_;
};

// DeviceIdFromUsername returns the device ID an IoT Hub MQTT username names
// (`{hub}/{deviceId}/?…`), or "" when it is not of that form.
std::string_view DeviceIdFromUsername(std::string_view username);

}  // namespace devid::gateway
