#include "gateway/device_authenticator.h"

#include <openssl/crypto.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "gateway/topic_policy.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace devid::gateway {
namespace {

constexpr std::string_view kAssigned = "assigned";

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
    if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
    if (x != y) return false;
  }
  return true;
}

// Keys holds the candidate device keys and overwrites them when it goes out of scope.
class Keys {
 public:
  Keys() = default;
  Keys(const Keys&) = delete;
  Keys& operator=(const Keys&) = delete;
  ~Keys() {
    for (std::vector<uint8_t>& key : keys_) OPENSSL_cleanse(key.data(), key.size());
  }

  // Add decodes a base64 key; "" (an unset secondary key) is skipped.
  Status Add(std::string_view key_base64, std::string_view what) {
    if (key_base64.empty()) return Ok();
    auto key = ossl::Base64Decode(key_base64);
    if (!key) {
      return std::unexpected(Internal("reading the " + std::string(what) + ": not base64"));
    }
    keys_.push_back(std::move(*key));
    return Ok();
  }

  // AddDerived adds the key derived from a group key for registration_id (protocol notes §2.3).
  Status AddDerived(std::string_view group_key_base64, std::string_view registration_id) {
    if (group_key_base64.empty()) return Ok();
    auto derived = pki::DeriveSymmetricKey(group_key_base64, registration_id);
    if (!derived) {
      return std::unexpected(Internal("deriving the device key: " + derived.error().message()));
    }
    Status added = Add(*derived, "derived key");
    OPENSSL_cleanse(derived->data(), derived->size());
    return added;
  }

  const std::vector<std::vector<uint8_t>>& keys() const { return keys_; }

 private:
  std::vector<std::vector<uint8_t>> keys_;
};

Error Refused(std::string_view device_id, std::string_view why) {
  return Unauthenticated("device \"" + std::string(device_id) + "\": " + std::string(why));
}

// EnrollmentSettingsFor reads the settings of the enrollment or group the device registered
// through; a deleted one refuses the device.
Result<registry::EnrollmentSettings> EnrollmentSettingsFor(RegistryCache& registry,
                                                           const registry::Registration& reg) {
  if (reg.enrollment_group_id.empty()) {
    auto enrollment = registry.GetEnrollment(reg.registration_id);
    if (!enrollment && enrollment.error().code() == ErrorCode::kNotFound) {
      return std::unexpected(Refused(reg.device_id, "its enrollment no longer exists"));
    }
    if (!enrollment) return std::unexpected(enrollment.error());
    return std::move(enrollment->settings);
  }
  auto group = registry.GetEnrollmentGroup(reg.enrollment_group_id);
  if (!group && group.error().code() == ErrorCode::kNotFound) {
    return std::unexpected(Refused(reg.device_id, "its enrollment group no longer exists"));
  }
  if (!group) return std::unexpected(group.error());
  return std::move(group->settings);
}

}  // namespace

std::string_view DeviceIdFromUsername(std::string_view username) {
  size_t hub_end = username.find('/');
  if (hub_end == std::string_view::npos || hub_end == 0) return "";
  std::string_view rest = username.substr(hub_end + 1);
  size_t id_end = rest.find('/');
  if (id_end == std::string_view::npos || id_end == 0) return "";
  if (!rest.substr(id_end + 1).starts_with("?api-version=")) return "";
  return rest.substr(0, id_end);
}

DeviceAuthenticator::DeviceAuthenticator(RegistryCache& registry, const Clock& clock,
                                         std::string required_hub)
    : registry_(registry), clock_(clock), required_hub_(std::move(required_hub)) {}

Result<AdmittedDevice> DeviceAuthenticator::AuthenticateSas(std::string_view client_id,
                                                            std::string_view username,
                                                            std::string_view password) {
  // IoT Hub MQTT (protocol notes §5.1): the username is `{hub}/{clientId}/?api-version=…` and the
  // client id is the device ID.
  std::string_view device_id = DeviceIdFromUsername(username);
  if (device_id.empty()) {
    return std::unexpected(
        Unauthenticated("client \"" + std::string(client_id) +
                        "\": the username is not {hub}/{deviceId}/?api-version=..."));
  }
  if (device_id != client_id) {
    return std::unexpected(Refused(device_id, "the client id is not the device ID"));
  }
  if (!IsValidDeviceId(device_id)) {
    return std::unexpected(Refused(device_id, "the device ID holds a character MQTT reserves"));
  }
  std::string_view hub = username.substr(0, username.find('/'));

  DEVID_ASSIGN_OR_RETURN(pki::SasToken token, pki::ParseSasToken(password));
  // An IoT Hub device token has no skn (§2.4); one with skn is a policy token.
  if (token.has_key_name) return std::unexpected(Refused(device_id, "the token names a policy"));
  if (token.expiry <= clock_.UnixSeconds()) {
    return std::unexpected(Refused(device_id, "the token has expired"));
  }
  std::string resource = std::string(hub) + "/devices/" + std::string(device_id);
  if (!pki::SasResourceMatches(token, resource)) {
    return std::unexpected(Refused(device_id, "the token's sr is not " + resource));
  }

  DEVID_ASSIGN_OR_RETURN(registry::Registration reg, FindRegistration(device_id));
  DEVID_ASSIGN_OR_RETURN(registry::EnrollmentSettings settings,
                         AdmissibleSettings(reg, device_id, hub));

  Keys keys;
  const registry::SymmetricKeyAttestation& sk = settings.attestation.symmetric_key;
  if (!reg.device_key.empty()) {
    DEVID_TRY(keys.Add(reg.device_key, "registration's device key"));
  } else if (settings.attestation.type != registry::AttestationType::kSymmetricKey) {
    return std::unexpected(Refused(device_id, "its enrollment has no symmetric key"));
  } else if (reg.enrollment_group_id.empty()) {
    DEVID_TRY(keys.Add(sk.primary_key, "enrollment's primary key"));
    DEVID_TRY(keys.Add(sk.secondary_key, "enrollment's secondary key"));
  } else {
    DEVID_TRY(keys.AddDerived(sk.primary_key, reg.registration_id));
    DEVID_TRY(keys.AddDerived(sk.secondary_key, reg.registration_id));
  }
  for (const std::vector<uint8_t>& key : keys.keys()) {
    if (pki::VerifySasSignature(token, key)) {
      return AdmittedDevice{reg.device_id, reg.assigned_hub, token.expiry};
    }
  }
  return std::unexpected(Refused(device_id, "the token's signature does not match its key"));
}

Status DeviceAuthenticator::Recheck(const AdmittedDevice& device) {
  // IoT Hub closes a session when its token expires; so does the gateway.
  if (device.token_expiry <= clock_.UnixSeconds()) {
    return std::unexpected(Refused(device.device_id, "the token has expired"));
  }
  DEVID_ASSIGN_OR_RETURN(registry::Registration reg, FindRegistration(device.device_id));
  DEVID_TRY(AdmissibleSettings(reg, device.device_id, device.hub));
  return Ok();
}

Result<registry::Registration> DeviceAuthenticator::FindRegistration(std::string_view device_id) {
  auto found = registry_.GetRegistration(device_id);
  if (!found && found.error().code() == ErrorCode::kNotFound) {
    return std::unexpected(Refused(device_id, "it is not registered"));
  }
  if (!found) return std::unexpected(found.error().WithContext("reading the registration"));
  return found;
}

Result<registry::EnrollmentSettings> DeviceAuthenticator::AdmissibleSettings(
    const registry::Registration& reg, std::string_view device_id, std::string_view hub) {
  if (reg.status != kAssigned) {
    return std::unexpected(Refused(device_id, "its registration is " + reg.status));
  }
  if (reg.device_id != device_id) {
    return std::unexpected(Refused(device_id, "its registration names another device ID"));
  }
  if (!EqualsIgnoringCase(reg.assigned_hub, hub)) {
    return std::unexpected(Refused(device_id, "it is not assigned to hub " + std::string(hub)));
  }
  if (!required_hub_.empty() && !EqualsIgnoringCase(reg.assigned_hub, required_hub_)) {
    return std::unexpected(Refused(device_id, "this gateway serves hub " + required_hub_));
  }
  DEVID_ASSIGN_OR_RETURN(registry::EnrollmentSettings settings,
                         EnrollmentSettingsFor(registry_, reg));
  if (!settings.enabled) return std::unexpected(Refused(device_id, "its enrollment is disabled"));
  return settings;
}

}  // namespace devid::gateway
