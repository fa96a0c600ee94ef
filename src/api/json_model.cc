#include "api/json_model.h"

#include "base/clock.h"
#include "base/hex.h"
#include "ossl/base64.h"
#include "pki/certificate.h"
#include "tpm/pcr_policy.h"
#include "tpm/public_area.h"

namespace devid::api {

nlohmann::json X509CertificateInfoJson(const pki::Certificate& certificate) {
  return {{"subjectName", certificate.SubjectName()},
          {"sha1Thumbprint", certificate.Sha1Thumbprint()},
          {"sha256Thumbprint", certificate.Sha256Thumbprint()},
          {"issuerName", certificate.IssuerName()},
          {"notBeforeUtc", FormatUtc(certificate.NotBefore())},
          {"notAfterUtc", FormatUtc(certificate.NotAfter())},
          {"serialNumber", certificate.SerialHex()},
          {"version", X509_get_version(certificate.get()) + 1}};
}

namespace {

using nlohmann::json;
using registry::AttestationType;

Error FieldError(std::string_view field, std::string_view problem) {
  return InvalidArgument(std::string(field) + ": " + std::string(problem));
}

// Optional typed members: absent or null → fallback; a wrong type is an error naming the field.
Result<std::string> OptString(const json& obj, const char* name, std::string_view path) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::unexpected(FieldError(path, "must be a string"));
  return it->get<std::string>();
}

Result<bool> OptBool(const json& obj, const char* name, std::string_view path, bool fallback) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return std::unexpected(FieldError(path, "must be true or false"));
  return it->get<bool>();
}

Result<const json*> OptObject(const json& obj, const char* name, std::string_view path) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  if (!it->is_object()) return std::unexpected(FieldError(path, "must be an object"));
  return &*it;
}

std::string JsonText(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return {};
  return it->dump();
}

// PcrPolicyFromJson reads attestation.tpm.pcrPolicy (devid extension, measured boot):
// {"hashAlgorithm": "sha256", "pcrs": [0, 7], "digests": ["<hex>", …]} or "digest": "<hex>",
// and returns it in the registry's text form.
Result<std::string> PcrPolicyFromJson(const json& obj) {
  constexpr std::string_view kPath = "attestation.tpm.pcrPolicy";
  tpm::PcrPolicy policy;
  auto bank = obj.find("hashAlgorithm");
  if (bank != obj.end() && !bank->is_null()) {
    if (!bank->is_string()) return std::unexpected(FieldError(kPath, "hashAlgorithm must be a string"));
    auto alg = tpm::ParseBankName(bank->get_ref<const std::string&>());
    if (!alg) return std::unexpected(FieldError(kPath, alg.error().message()));
    policy.bank = *alg;
  }
  auto pcrs = obj.find("pcrs");
  if (pcrs == obj.end() || !pcrs->is_array()) {
    return std::unexpected(FieldError(kPath, "pcrs must be an array of PCR indices"));
  }
  for (const json& pcr : *pcrs) {
    if (!pcr.is_number_unsigned() || pcr.get<uint64_t>() > 0xffff) {
      return std::unexpected(FieldError(kPath, "pcrs must be an array of PCR indices"));
    }
    policy.pcrs.push_back(static_cast<uint32_t>(pcr.get<uint64_t>()));
  }
  std::vector<std::string> hexes;
  auto digest = obj.find("digest");
  auto digests = obj.find("digests");
  if (digest != obj.end() && digest->is_string()) hexes.push_back(digest->get<std::string>());
  if (digests != obj.end() && digests->is_array()) {
    for (const json& d : *digests) {
      if (!d.is_string()) return std::unexpected(FieldError(kPath, "digests must be hex strings"));
      hexes.push_back(d.get<std::string>());
    }
  }
  for (const std::string& hex : hexes) {
    auto bytes = tpm::ParseHexDigest(hex);
    if (!bytes) return std::unexpected(FieldError(kPath, bytes.error().message()));
    policy.digests.push_back(std::move(*bytes));
  }
  if (auto valid = tpm::ValidatePcrPolicy(policy); !valid) {
    return std::unexpected(FieldError(kPath, valid.error().message()));
  }
  return tpm::FormatPcrPolicy(policy);
}

json PcrPolicyToJson(const std::string& text) {
  auto policy = tpm::ParsePcrPolicy(text);
  if (!policy) return nullptr;
  json digests = json::array();
  for (const tpm::Bytes& d : policy->digests) digests.push_back(HexEncode(d));
  return {{"hashAlgorithm", tpm::BankName(policy->bank)}, {"pcrs", policy->pcrs},
          {"digests", std::move(digests)}};
}

json ParseStored(const std::string& text) {
  if (text.empty()) return nullptr;
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

Status ValidateKey(const std::string& key, std::string_view path) {
  if (key.empty()) return Ok();
  auto bytes = ossl::Base64Decode(key);
  if (!bytes) return std::unexpected(FieldError(path, "must be base64"));
  // DPS accepts symmetric keys of 16 to 64 bytes.
  if (bytes->size() < 16 || bytes->size() > 64) {
    return std::unexpected(FieldError(path, "must decode to 16–64 bytes"));
  }
  return Ok();
}

Result<std::string> CertificateField(const json& certs, const char* slot, std::string_view path) {
  DEVID_ASSIGN_OR_RETURN(const json* entry, OptObject(certs, slot, path));
  if (entry == nullptr) return std::string();
  std::string field = std::string(path) + ".certificate";
  DEVID_ASSIGN_OR_RETURN(std::string pem, OptString(*entry, "certificate", field));
  if (pem.empty()) return std::unexpected(FieldError(field, "is required"));
  auto cert = pki::Certificate::FromPem(pem);
  if (!cert) {
    // Azure also accepts base64 DER.
    auto der = ossl::Base64Decode(pem);
    if (!der) return std::unexpected(FieldError(field, "is not a PEM or base64 certificate"));
    cert = pki::Certificate::FromDer(std::string(der->begin(), der->end()));
    if (!cert) return std::unexpected(FieldError(field, "is not a PEM or base64 certificate"));
  }
  return cert->ToPem();
}

json CertificateInfo(const std::string& pem) {
  auto cert = pki::Certificate::FromPem(pem);
  if (!cert) return nullptr;
  return X509CertificateInfoJson(*cert);
}

json CertificatePair(const std::string& primary, const std::string& secondary) {
  json out = json::object();
  if (!primary.empty()) {
    out["primary"] = {{"certificate", primary}, {"info", CertificateInfo(primary)}};
  }
  if (!secondary.empty()) {
    out["secondary"] = {{"certificate", secondary}, {"info", CertificateInfo(secondary)}};
  }
  return out;
}

Result<registry::EnrollmentSettings> SettingsFromJson(const json& json) {
  registry::EnrollmentSettings s;
  auto att = json.find("attestation");
  if (att == json.end() || att->is_null()) {
    return std::unexpected(FieldError("attestation", "is required"));
  }
  DEVID_ASSIGN_OR_RETURN(s.attestation, AttestationFromJson(*att));
  DEVID_ASSIGN_OR_RETURN(std::string status,
                         OptString(json, "provisioningStatus", "provisioningStatus"));
  if (status.empty() || status == "enabled") {
    s.enabled = true;
  } else if (status == "disabled") {
    s.enabled = false;
  } else {
    return std::unexpected(FieldError("provisioningStatus", "must be \"enabled\" or \"disabled\""));
  }
  DEVID_ASSIGN_OR_RETURN(const nlohmann::json* caps,
                         OptObject(json, "capabilities", "capabilities"));
  if (caps) {
    DEVID_ASSIGN_OR_RETURN(s.iot_edge, OptBool(*caps, "iotEdge", "capabilities.iotEdge", false));
  }
  DEVID_ASSIGN_OR_RETURN(const nlohmann::json* twin, OptObject(json, "initialTwin", "initialTwin"));
  if (twin) s.initial_twin_json = twin->dump();
  DEVID_ASSIGN_OR_RETURN(const nlohmann::json* policy,
                         OptObject(json, "reprovisionPolicy", "reprovisionPolicy"));
  if (policy) {
    DEVID_ASSIGN_OR_RETURN(
        s.reprovision_policy.update_hub_assignment,
        OptBool(*policy, "updateHubAssignment", "reprovisionPolicy.updateHubAssignment", true));
    DEVID_ASSIGN_OR_RETURN(
        s.reprovision_policy.migrate_device_data,
        OptBool(*policy, "migrateDeviceData", "reprovisionPolicy.migrateDeviceData", true));
  }
  DEVID_ASSIGN_OR_RETURN(s.allocation_policy,
                         OptString(json, "allocationPolicy", "allocationPolicy"));
  if (!s.allocation_policy.empty() && s.allocation_policy != "hashed" &&
      s.allocation_policy != "static") {
    return std::unexpected(FieldError(
        "allocationPolicy",
        "\"" + s.allocation_policy + "\" is not supported; use \"hashed\" or \"static\""));
  }
  auto hubs = json.find("iotHubs");
  if (hubs != json.end() && !hubs->is_null()) {
    if (!hubs->is_array()) return std::unexpected(FieldError("iotHubs", "must be an array"));
    for (const auto& hub : *hubs) {
      if (!hub.is_string() || hub.get<std::string>().empty()) {
        return std::unexpected(FieldError("iotHubs", "must hold host names"));
      }
      s.iot_hubs.push_back(hub.get<std::string>());
    }
  }
  DEVID_ASSIGN_OR_RETURN(s.iot_hub_host_name, OptString(json, "iotHubHostName", "iotHubHostName"));
  s.custom_allocation_json = JsonText(json, "customAllocationDefinition");
  DEVID_ASSIGN_OR_RETURN(s.etag, OptString(json, "etag", "etag"));
  return s;
}

void SettingsToJson(const registry::EnrollmentSettings& s, json& out) {
  out["attestation"] = AttestationToJson(s.attestation);
  out["capabilities"] = {{"iotEdge", s.iot_edge}};
  out["etag"] = s.etag;
  out["provisioningStatus"] = s.enabled ? "enabled" : "disabled";
  out["reprovisionPolicy"] = {{"updateHubAssignment", s.reprovision_policy.update_hub_assignment},
                              {"migrateDeviceData", s.reprovision_policy.migrate_device_data}};
  out["createdDateTimeUtc"] = FormatUtc(s.created);
  out["lastUpdatedDateTimeUtc"] = FormatUtc(s.updated);
  out["allocationPolicy"] = s.allocation_policy.empty() ? "hashed" : s.allocation_policy;
  out["iotHubs"] = s.iot_hubs;
  if (!s.iot_hub_host_name.empty()) out["iotHubHostName"] = s.iot_hub_host_name;
  if (!s.initial_twin_json.empty()) out["initialTwin"] = ParseStored(s.initial_twin_json);
  if (!s.custom_allocation_json.empty()) {
    out["customAllocationDefinition"] = ParseStored(s.custom_allocation_json);
  }
}

}  // namespace

bool IsValidRegistrationId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':';
    if (!ok) return false;
  }
  return true;
}

Result<registry::AttestationMechanism> AttestationFromJson(const json& json) {
  if (!json.is_object()) return std::unexpected(FieldError("attestation", "must be an object"));
  registry::AttestationMechanism a;
  DEVID_ASSIGN_OR_RETURN(std::string type, OptString(json, "type", "attestation.type"));
  if (type == "symmetricKey") {
    a.type = AttestationType::kSymmetricKey;
    DEVID_ASSIGN_OR_RETURN(const nlohmann::json* sk,
                           OptObject(json, "symmetricKey", "attestation.symmetricKey"));
    if (sk) {
      DEVID_ASSIGN_OR_RETURN(a.symmetric_key.primary_key,
                             OptString(*sk, "primaryKey", "attestation.symmetricKey.primaryKey"));
      DEVID_ASSIGN_OR_RETURN(
          a.symmetric_key.secondary_key,
          OptString(*sk, "secondaryKey", "attestation.symmetricKey.secondaryKey"));
      DEVID_TRY(ValidateKey(a.symmetric_key.primary_key, "attestation.symmetricKey.primaryKey"));
      DEVID_TRY(
          ValidateKey(a.symmetric_key.secondary_key, "attestation.symmetricKey.secondaryKey"));
    }
  } else if (type == "x509") {
    a.type = AttestationType::kX509;
    DEVID_ASSIGN_OR_RETURN(const nlohmann::json* x, OptObject(json, "x509", "attestation.x509"));
    if (x == nullptr) return std::unexpected(FieldError("attestation.x509", "is required"));
    DEVID_ASSIGN_OR_RETURN(
        const nlohmann::json* client,
        OptObject(*x, "clientCertificates", "attestation.x509.clientCertificates"));
    if (client) {
      DEVID_ASSIGN_OR_RETURN(
          a.x509.client_primary_pem,
          CertificateField(*client, "primary", "attestation.x509.clientCertificates.primary"));
      DEVID_ASSIGN_OR_RETURN(
          a.x509.client_secondary_pem,
          CertificateField(*client, "secondary", "attestation.x509.clientCertificates.secondary"));
    }
    DEVID_ASSIGN_OR_RETURN(
        const nlohmann::json* signing,
        OptObject(*x, "signingCertificates", "attestation.x509.signingCertificates"));
    if (signing) {
      DEVID_ASSIGN_OR_RETURN(
          a.x509.signing_primary_pem,
          CertificateField(*signing, "primary", "attestation.x509.signingCertificates.primary"));
      DEVID_ASSIGN_OR_RETURN(a.x509.signing_secondary_pem,
                             CertificateField(*signing, "secondary",
                                              "attestation.x509.signingCertificates.secondary"));
    }
    DEVID_ASSIGN_OR_RETURN(const nlohmann::json* cas,
                           OptObject(*x, "caReferences", "attestation.x509.caReferences"));
    if (cas) {
      DEVID_ASSIGN_OR_RETURN(a.x509.ca_reference_primary,
                             OptString(*cas, "primary", "attestation.x509.caReferences.primary"));
      DEVID_ASSIGN_OR_RETURN(
          a.x509.ca_reference_secondary,
          OptString(*cas, "secondary", "attestation.x509.caReferences.secondary"));
    }
    if (a.x509.client_primary_pem.empty() && a.x509.signing_primary_pem.empty() &&
        a.x509.ca_reference_primary.empty()) {
      return std::unexpected(FieldError(
          "attestation.x509",
          "needs clientCertificates.primary, signingCertificates.primary or caReferences.primary"));
    }
  } else if (type == "tpm") {
    a.type = AttestationType::kTpm;
    DEVID_ASSIGN_OR_RETURN(const nlohmann::json* tpm, OptObject(json, "tpm", "attestation.tpm"));
    if (tpm == nullptr) return std::unexpected(FieldError("attestation.tpm", "is required"));
    DEVID_ASSIGN_OR_RETURN(a.tpm.endorsement_key,
                           OptString(*tpm, "endorsementKey", "attestation.tpm.endorsementKey"));
    DEVID_ASSIGN_OR_RETURN(a.tpm.storage_root_key,
                           OptString(*tpm, "storageRootKey", "attestation.tpm.storageRootKey"));
    if (a.tpm.endorsement_key.empty()) {
      return std::unexpected(
          FieldError("attestation.tpm.endorsementKey", "is required, as base64 TPM2B_PUBLIC"));
    }
    // The device challenge encrypts to these keys (protocol notes §4.4), so an enrollment holds
    // only RSA public areas devid can use.
    if (auto ek = tpm::ParseRsaPublicBase64(a.tpm.endorsement_key); !ek) {
      return std::unexpected(FieldError("attestation.tpm.endorsementKey", ek.error().message()));
    }
    if (!a.tpm.storage_root_key.empty()) {
      if (auto srk = tpm::ParseRsaPublicBase64(a.tpm.storage_root_key); !srk) {
        return std::unexpected(FieldError("attestation.tpm.storageRootKey", srk.error().message()));
      }
    }
    DEVID_ASSIGN_OR_RETURN(a.tpm.require_ek_certificate,
                           OptBool(*tpm, "requireEndorsementKeyCertificate",
                                   "attestation.tpm.requireEndorsementKeyCertificate", false));
    DEVID_ASSIGN_OR_RETURN(const nlohmann::json* pcr_policy,
                           OptObject(*tpm, "pcrPolicy", "attestation.tpm.pcrPolicy"));
    if (pcr_policy) {
      DEVID_ASSIGN_OR_RETURN(a.tpm.pcr_policy, PcrPolicyFromJson(*pcr_policy));
    }
  } else {
    return std::unexpected(
        FieldError("attestation.type", "must be \"symmetricKey\", \"x509\" or \"tpm\""));
  }
  return a;
}

json AttestationToJson(const registry::AttestationMechanism& a) {
  switch (a.type) {
    case AttestationType::kSymmetricKey:
      return {{"type", "symmetricKey"},
              {"symmetricKey",
               {{"primaryKey", a.symmetric_key.primary_key},
                {"secondaryKey", a.symmetric_key.secondary_key}}}};
    case AttestationType::kX509: {
      json x509 = json::object();
      if (!a.x509.client_primary_pem.empty() || !a.x509.client_secondary_pem.empty()) {
        x509["clientCertificates"] =
            CertificatePair(a.x509.client_primary_pem, a.x509.client_secondary_pem);
      }
      if (!a.x509.signing_primary_pem.empty() || !a.x509.signing_secondary_pem.empty()) {
        x509["signingCertificates"] =
            CertificatePair(a.x509.signing_primary_pem, a.x509.signing_secondary_pem);
      }
      if (!a.x509.ca_reference_primary.empty()) {
        x509["caReferences"] = {{"primary", a.x509.ca_reference_primary}};
        if (!a.x509.ca_reference_secondary.empty()) {
          x509["caReferences"]["secondary"] = a.x509.ca_reference_secondary;
        }
      }
      return {{"type", "x509"}, {"x509", x509}};
    }
    case AttestationType::kTpm: {
      json tpm = {{"endorsementKey", a.tpm.endorsement_key}};
      if (!a.tpm.storage_root_key.empty()) tpm["storageRootKey"] = a.tpm.storage_root_key;
      if (a.tpm.require_ek_certificate) tpm["requireEndorsementKeyCertificate"] = true;
      if (!a.tpm.pcr_policy.empty()) tpm["pcrPolicy"] = PcrPolicyToJson(a.tpm.pcr_policy);
      return {{"type", "tpm"}, {"tpm", tpm}};
    }
    case AttestationType::kNone:
      break;
  }
  return {{"type", "none"}};
}

Result<registry::Enrollment> EnrollmentFromJson(const json& json) {
  if (!json.is_object()) return std::unexpected(InvalidArgument("the body must be a JSON object"));
  registry::Enrollment e;
  DEVID_ASSIGN_OR_RETURN(e.registration_id, OptString(json, "registrationId", "registrationId"));
  if (!IsValidRegistrationId(e.registration_id)) {
    return std::unexpected(FieldError(
        "registrationId", "must be 1–128 characters of letters, digits, '-', '.', '_' and ':'"));
  }
  DEVID_ASSIGN_OR_RETURN(e.device_id, OptString(json, "deviceId", "deviceId"));
  if (!e.device_id.empty() && !IsValidRegistrationId(e.device_id)) {
    return std::unexpected(FieldError(
        "deviceId", "must be 1–128 characters of letters, digits, '-', '.', '_' and ':'"));
  }
  e.optional_device_information_json = JsonText(json, "optionalDeviceInformation");
  DEVID_ASSIGN_OR_RETURN(e.settings, SettingsFromJson(json));
  return e;
}

json EnrollmentToJson(const registry::Enrollment& e, const registry::Registration* registration) {
  json out = {{"registrationId", e.registration_id}};
  if (!e.device_id.empty()) out["deviceId"] = e.device_id;
  if (registration) out["registrationState"] = RegistrationStateToJson(*registration);
  if (!e.optional_device_information_json.empty()) {
    out["optionalDeviceInformation"] = ParseStored(e.optional_device_information_json);
  }
  SettingsToJson(e.settings, out);
  return out;
}

Result<registry::EnrollmentGroup> EnrollmentGroupFromJson(const json& json) {
  if (!json.is_object()) return std::unexpected(InvalidArgument("the body must be a JSON object"));
  registry::EnrollmentGroup g;
  DEVID_ASSIGN_OR_RETURN(g.enrollment_group_id,
                         OptString(json, "enrollmentGroupId", "enrollmentGroupId"));
  if (!IsValidRegistrationId(g.enrollment_group_id)) {
    return std::unexpected(FieldError(
        "enrollmentGroupId", "must be 1–128 characters of letters, digits, '-', '.', '_' and ':'"));
  }
  DEVID_ASSIGN_OR_RETURN(g.registration_id_prefix,
                         OptString(json, "registrationIdPrefix", "registrationIdPrefix"));
  if (!g.registration_id_prefix.empty() && !IsValidRegistrationId(g.registration_id_prefix)) {
    return std::unexpected(
        FieldError("registrationIdPrefix", "may hold only letters, digits, '-', '.', '_' and ':'"));
  }
  DEVID_ASSIGN_OR_RETURN(g.settings, SettingsFromJson(json));
  if (g.settings.attestation.type == AttestationType::kTpm) {
    return std::unexpected(
        FieldError("attestation.type", "TPM attestation is for individual enrollments only"));
  }
  if (g.settings.attestation.type == AttestationType::kX509 &&
      !g.settings.attestation.x509.client_primary_pem.empty()) {
    return std::unexpected(FieldError("attestation.x509.clientCertificates",
                                      "groups take signingCertificates or caReferences"));
  }
  return g;
}

json EnrollmentGroupToJson(const registry::EnrollmentGroup& g) {
  json out = {{"enrollmentGroupId", g.enrollment_group_id}};
  if (!g.registration_id_prefix.empty()) out["registrationIdPrefix"] = g.registration_id_prefix;
  SettingsToJson(g.settings, out);
  return out;
}

json RegistrationStateToJson(const registry::Registration& r) {
  json out = {{"registrationId", r.registration_id},
              {"createdDateTimeUtc", FormatUtc(r.created)},
              {"status", r.status},
              {"lastUpdatedDateTimeUtc", FormatUtc(r.updated)},
              {"etag", r.etag}};
  if (!r.assigned_hub.empty()) out["assignedHub"] = r.assigned_hub;
  if (!r.device_id.empty()) out["deviceId"] = r.device_id;
  if (!r.substatus.empty()) out["substatus"] = r.substatus;
  if (r.error_code != 0) {
    out["errorCode"] = r.error_code;
    out["errorMessage"] = r.error_message;
  }
  if (r.attestation_type == AttestationType::kSymmetricKey && !r.enrollment_group_id.empty()) {
    out["symmetricKey"] = {{"enrollmentGroupId", r.enrollment_group_id}};
  }
  if (!r.response_payload_json.empty()) out["payload"] = ParseStored(r.response_payload_json);
  return out;
}

}  // namespace devid::api
