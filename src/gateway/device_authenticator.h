#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/registry_cache.h"
#include "pki/certificate.h"

namespace devid::gateway {

// AdmittedDevice is who DeviceAuthenticator let in.
struct AdmittedDevice {
  std::string device_id;
  std::string hub;  // the registration's assigned hub
  // token_expiry is the SAS token's se, or the client certificate's notAfter (Unix seconds): the
  // session must end by then.
  int64_t token_expiry = 0;
  // certificate_thumbprints are the SHA-256 thumbprints (uppercase hex) of the client certificate
  // and of the enrolled certificate it was validated to, for an X.509 device; revoking any of
  // them in the inventory ends the session. Empty for SAS.
  std::vector<std::string> certificate_thumbprints;
  // back_end_policy is, for a back end BackEndAuthenticator admitted, the service access policy
  // its token was signed with (device_id is then the back end's client id); "" for a device.
  std::string back_end_policy;
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
// X.509 admission: the broker's TLS listener verified the client certificate and the client's
// possession of its key; the username is as for SAS, the client id and the certificate's subject
// CN are the device ID. The certificate must be one devid issued to that device (in the
// inventory, unrevoked, unexpired), or one its enrollment trusts (attestation::X509Verifier: the
// individual enrollment's thumbprint, or a chain to the group's signing certificate, nothing on
// the path revoked). The registration must be admissible as for SAS and, for an enrollment-trusted
// certificate, made through that enrollment or group.
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

  // AuthenticateX509 admits the client that presented leaf (its TLS client certificate) or fails
  // as AuthenticateSas does, naming the reason (client id or CN mismatch, revoked, unknown,
  // untrusted or expired certificate, a certificate of another enrollment, ...).
  Result<AdmittedDevice> AuthenticateX509(std::string_view client_id, std::string_view username,
                                          const pki::Certificate& leaf);

  // Recheck tells whether an admitted device may keep its session: its token has not expired, its
  // registration is still assigned to the same hub under the same device ID, and its enrollment or
  // group still exists and is enabled, and none of its certificate_thumbprints is revoked (read
  // from the store, not the cache). It fails as AuthenticateSas does; callers must close the
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
  // IssuedRecord returns the inventory's record of the certificate devid issued with this SHA-256
  // thumbprint, or nullopt when devid did not issue it.
  Result<std::optional<registry::CertificateRecord>> IssuedRecord(const std::string& thumbprint);
  // CheckNotRevoked fails when the inventory has one of thumbprints revoked.
  Status CheckNotRevoked(std::string_view device_id, const std::vector<std::string>& thumbprints);

  RegistryCache& registry_;
  const Clock& clock_;
  const std::string required_hub_;
};

// DeviceIdFromUsername returns the device ID an IoT Hub MQTT username names
// (`{hub}/{deviceId}/?…`), or "" when it is not of that form.
std::string_view DeviceIdFromUsername(std::string_view username);

}  // namespace devid::gateway
