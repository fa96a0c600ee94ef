#include "gateway/device_authenticator.h"

#include <openssl/crypto.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "attestation/x509/x509_verifier.h"
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

// UsernameDeviceId checks an IoT Hub username (protocol notes §5.1) against the client id and
// returns the device ID it names.
Result<std::string_view> UsernameDeviceId(std::string_view client_id, std::string_view username) {
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
  return device_id;
}

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
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
  DEVID_ASSIGN_OR_RETURN(std::string_view device_id, UsernameDeviceId(client_id, username));
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

Result<AdmittedDevice> DeviceAuthenticator::AuthenticateX509(std::string_view client_id,
                                                             std::string_view username,
                                                             const pki::Certificate& leaf) {
  DEVID_ASSIGN_OR_RETURN(std::string_view device_id, UsernameDeviceId(client_id, username));
  std::string_view hub = username.substr(0, username.find('/'));
  // IoT Hub X.509 devices are named by their certificate's CN (protocol notes §5.1).
  if (std::string cn = leaf.SubjectCommonName(); cn != device_id) {
    return std::unexpected(
        Refused(device_id, "the client certificate's CN \"" + cn + "\" is not the device ID"));
  }
  int64_t not_after = UnixSeconds(leaf.NotAfter());
  if (not_after <= clock_.UnixSeconds()) {
    return std::unexpected(Refused(device_id, "the client certificate has expired"));
  }
  DEVID_ASSIGN_OR_RETURN(registry::Registration reg, FindRegistration(device_id));
  DEVID_TRY(AdmissibleSettings(reg, device_id, hub));
  std::string thumbprint = leaf.Sha256Thumbprint();
  AdmittedDevice admitted{reg.device_id, reg.assigned_hub, not_after, {thumbprint}};

  DEVID_ASSIGN_OR_RETURN(std::optional<registry::CertificateRecord> issued,
                         IssuedRecord(thumbprint));
  if (issued) {
    if (issued->device_id != device_id) {
      return std::unexpected(
          Refused(device_id, "its client certificate was issued to \"" + issued->device_id + "\""));
    }
    if (issued->revoked) {
      return std::unexpected(
          Refused(device_id, "its client certificate (serial " + issued->serial + ") was revoked"));
    }
    return admitted;
  }
  // Not devid's: the same verifier as the server's X.509 attestation decides which enrollment
  // trusts it. The broker hands plugins the leaf only, so intermediates cannot be supplied.
  attestation::X509Verifier verifier(registry_.store(), clock_);
  std::string der = leaf.ToDer();
  auto verified = verifier.Verify(reg.registration_id, std::span<const std::string>(&der, 1));
  if (!verified) {
    ErrorCode code = verified.error().code();
    if (code != ErrorCode::kUnauthenticated && code != ErrorCode::kPermissionDenied) {
      return std::unexpected(verified.error().WithContext("verifying the client certificate"));
    }
    return std::unexpected(Refused(device_id, verified.error().message()));
  }
  bool same_enrollment = verified->enrollment
                             ? reg.enrollment_group_id.empty()
                             : verified->group->enrollment_group_id == reg.enrollment_group_id;
  if (!same_enrollment) {
    return std::unexpected(Refused(
        device_id, "its certificate is trusted by another enrollment than it registered through"));
  }
  if (verified->x509_signer) {
    admitted.certificate_thumbprints.push_back(verified->x509_signer->Sha256Thumbprint());
  }
  return admitted;
}

Status DeviceAuthenticator::Recheck(const AdmittedDevice& device) {
  // IoT Hub closes a session when its token expires; so does the gateway.
  if (device.token_expiry <= clock_.UnixSeconds()) {
    return std::unexpected(Refused(device.device_id, "the token has expired"));
  }
  DEVID_ASSIGN_OR_RETURN(registry::Registration reg, FindRegistration(device.device_id));
  DEVID_TRY(AdmissibleSettings(reg, device.device_id, device.hub));
  return CheckNotRevoked(device.device_id, device.certificate_thumbprints);
}

Result<std::optional<registry::CertificateRecord>> DeviceAuthenticator::IssuedRecord(
    const std::string& thumbprint) {
  registry::CertificateFilter filter;
  filter.sha256_thumbprint = thumbprint;
  filter.source = registry::CertificateSource::kIssued;
  auto found = registry_.store().QueryCertificates(filter, {.max_items = 1});
  if (!found) {
    return std::unexpected(found.error().WithContext("reading the certificate inventory"));
  }
  if (found->items.empty()) return std::nullopt;
  return std::move(found->items.front());
}

Status DeviceAuthenticator::CheckNotRevoked(std::string_view device_id,
                                            const std::vector<std::string>& thumbprints) {
  // Read uncached: a revocation must reach live sessions within one re-check interval.
  for (const std::string& thumbprint : thumbprints) {
    registry::CertificateFilter filter;
    filter.sha256_thumbprint = thumbprint;
    filter.revoked = true;
    auto revoked = registry_.store().QueryCertificates(filter, {.max_items = 1});
    if (!revoked) {
      return std::unexpected(revoked.error().WithContext("reading the certificate inventory"));
    }
    if (!revoked->items.empty()) {
      return std::unexpected(Refused(device_id, "its certificate " + revoked->items[0].subject +
                                                    " (serial " + revoked->items[0].serial +
                                                    ") was revoked"));
    }
  }
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
