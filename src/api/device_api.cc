#include "api/device_api.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <optional>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_model.h"
#include "api/json_response.h"
#include "ca/csr_policy.h"
#include "ca/profile.h"
#include "ca/recorded_issuance.h"
#include "ossl/base64.h"
#include "pki/csr.h"
#include "registry/allocation.h"

namespace devid::api {
namespace {

using nlohmann::json;

bool SameId(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// TpmKeysFromJson reads the register body's `tpm` object (protocol notes §4.1).
Result<attestation::TpmKeys> TpmKeysFromJson(const json& tpm) {
  if (!tpm.is_object()) return std::unexpected(InvalidArgument("tpm must be an object"));
  attestation::TpmKeys keys;
  auto ek = tpm.find("endorsementKey");
  if (ek == tpm.end() || !ek->is_string() || ek->get_ref<const std::string&>().empty()) {
    return std::unexpected(
        InvalidArgument("tpm.endorsementKey is required, as base64 TPM2B_PUBLIC"));
  }
  keys.endorsement_key = ek->get<std::string>();
  auto srk = tpm.find("storageRootKey");
  if (srk != tpm.end() && !srk->is_null()) {
    if (!srk->is_string()) {
      return std::unexpected(InvalidArgument("tpm.storageRootKey must be a base64 string"));
    }
    keys.storage_root_key = srk->get<std::string>();
  }
  // devid extensions (docs/device-provisioning.md): EK certificate and measured-boot evidence.
  const std::pair<const char*, std::string*> extensions[] = {
      {"endorsementKeyCertificate", &keys.endorsement_key_certificate},
      {"attestationKey", &keys.quote.attestation_key},
      {"attestationKeyCredential", &keys.quote.attestation_key_credential},
      {"quote", &keys.quote.quote},
      {"quoteSignature", &keys.quote.quote_signature},
  };
  for (const auto& [name, field] : extensions) {
    auto value = tpm.find(name);
    if (value == tpm.end() || value->is_null()) continue;
    if (!value->is_string()) {
      return std::unexpected(InvalidArgument(std::string("tpm.") + name + " must be a base64 string"));
    }
    *field = value->get<std::string>();
  }
  return keys;
}

// AssigningJson is the PUT's answer: the registration is stored, the device polls for it.
json AssigningJson(const registry::Registration& registration) {
  return {{"operationId", registration.operation_id}, {"status", "assigning"}};
}

// UsesCertificate tells whether a request authenticates with its TLS client certificate: it has
// one and no Authorization header (a SAS token, when sent, takes precedence, as in DPS).
bool UsesCertificate(const Request& request) {
  return !request.peer_certificates_der.empty() && !request.HasHeader("authorization");
}

// VerifyCertificate authenticates the request's client chain, as the TLS layer parsed it when it
// did, so that it is not decoded again.
Result<attestation::VerifiedDevice> VerifyCertificate(attestation::X509Verifier& verifier,
                                                      const std::string& reg_id,
                                                      const Request& request) {
  if (request.peer_certificates) return verifier.Verify(reg_id, *request.peer_certificates);
  return verifier.Verify(reg_id, request.peer_certificates_der);
}

}  // namespace

Response DeviceApi::Handle(const Request& request, const Target& target,
                           const std::string& tracking_id) {
  // segments: {idScope, "registrations", registrationId, ...}
  const auto& s = target.segments;
  std::string_view version = target.QueryValue("api-version");
  if (!IsValidApiVersion(version)) {
    return ErrorResponse(error_code::kInvalidApiVersion,
                         version.empty() ? "the api-version query parameter is required"
                                         : "api-version \"" + std::string(version) +
                                               "\" is not of the form YYYY-MM-DD[-preview]",
                         tracking_id);
  }
  if (s.size() < 3 || !IsValidRegistrationId(s[2])) {
    return ErrorResponse(error_code::kInvalidField,
                         "registrationId in the path must be 1–128 characters of letters, digits, "
                         "'-', '.', '_' and ':'",
                         tracking_id);
  }
  if (!SameId(s[0], *id_scope_.Get())) {
    return Reject(Unauthenticated("ID scope " + s[0] + " is not served here"), s[2], tracking_id);
  }
  const std::string& reg_id = s[2];
  if (s.size() == 4 && s[3] == "register") {
    if (request.method != "PUT") {
      return ErrorResponse(error_code::kMethodNotAllowed, "register takes PUT", tracking_id);
    }
    return Register(request, target, reg_id, tracking_id);
  }
  if (s.size() == 5 && s[3] == "operations") {
    if (request.method != "GET") {
      return ErrorResponse(error_code::kMethodNotAllowed, "operation status takes GET",
                           tracking_id);
    }
    return OperationStatus(request, reg_id, s[4], tracking_id);
  }
  if (s.size() == 3) {
    if (request.method != "POST") {
      return ErrorResponse(error_code::kMethodNotAllowed, "registration status takes POST",
                           tracking_id);
    }
    return RegistrationStatus(request, reg_id, tracking_id);
  }
  return ErrorResponse(error_code::kRouteNotFound, "no device route " + target.path, tracking_id);
}

Result<attestation::VerifiedDevice> DeviceApi::Authenticate(
    const Request& request, const std::string& reg_id, const registry::Registration* registration) {
  if (registration != nullptr &&
      registration->attestation_type == registry::AttestationType::kTpm) {
    return tpm_verifier_.VerifyRegistered(*id_scope_.Get(), *registration,
                                          request.HeaderValue("authorization"));
  }
  if (UsesCertificate(request)) return VerifyCertificate(x509_verifier_, reg_id, request);
  return verifier_.Verify(*id_scope_.Get(), reg_id, request.HeaderValue("authorization"),
                          registration);
}

Result<json> DeviceApi::Answer(const registry::Registration& registration,
                               const attestation::VerifiedDevice& device, bool bare_state) {
  json state = RegistrationStateToJson(registration);
  if (registration.attestation_type == registry::AttestationType::kTpm && device.enrollment) {
    // Protocol notes §4.2 step 4: the SDKs activate the key again from the final answer.
    DEVID_ASSIGN_OR_RETURN(std::string blob,
                           tpm_verifier_.AuthenticationKey(*device.enrollment, registration));
    state["tpm"] = {{"authenticationKey", std::move(blob)}};
  }
  if (device.x509_leaf) {
    // Protocol notes §3: the certificate the device authenticated with, and for a group the
    // signing certificate its chain was validated to.
    json x509 = {{"certificateInfo", X509CertificateInfoJson(*device.x509_leaf)}};
    if (device.group && device.x509_signer) {
      x509["enrollmentGroupId"] = device.group->enrollment_group_id;
      x509["signingCertificateInfo"] = X509CertificateInfoJson(*device.x509_signer);
    }
    state["x509"] = std::move(x509);
  }
  if (bare_state) return state;
  return json{{"operationId", registration.operation_id},
              {"status", registration.status},
              {"registrationState", std::move(state)}};
}

Response DeviceApi::TpmChallenge(const attestation::TpmKeys& keys, const std::string& reg_id,
                                 const std::string& tracking_id) {
  auto challenge = tpm_verifier_.Challenge(reg_id, keys);
  if (!challenge) return Reject(challenge.error(), reg_id, tracking_id);
  spdlog::debug("TPM challenge issued: registrationId={} trackingId={}", reg_id, tracking_id);
  // Protocol notes §4.2 step 2: Node needs authenticationKey; the C SDK also requires keyName
  // and signs with it as skn.
  json answer{{"authenticationKey", std::move(challenge->authentication_key)},
              {"keyName", "registration"}};
  if (challenge->quote) {
    answer["attestationChallenge"] = {
        {"nonce", std::move(challenge->quote->nonce)},
        {"attestationKeyCredential", std::move(challenge->quote->attestation_key_credential)}};
  }
  return JsonResponse(401, answer);
}

Response DeviceApi::Reject(const Error& error, const std::string& reg_id,
                           const std::string& tracking_id) {
  spdlog::info("device request refused: registrationId={} code={} reason=\"{}\" trackingId={}",
               reg_id, ErrorCodeName(error.code()), error.message(), tracking_id);
  switch (error.code()) {
    case ErrorCode::kUnauthenticated:
      return ErrorResponse(error_code::kUnauthorized, error.message(), tracking_id);
    case ErrorCode::kPermissionDenied:
      return ErrorResponse(error_code::kEnrollmentDisabled, error.message(), tracking_id);
    default:
      if (error.code() == ErrorCode::kInternal || error.code() == ErrorCode::kUnavailable) {
        spdlog::error("device request failed: {} trackingId={}", error.message(), tracking_id);
      }
      return ErrorResponseFor(error, tracking_id);
  }
}

Response DeviceApi::Register(const Request& request, const Target& target,
                             const std::string& reg_id, const std::string& tracking_id) {
  auto body = ParseJsonBody(request.body);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto body_id = body->find("registrationId");
  if (body_id != body->end() && !body_id->is_null() &&
      (!body_id->is_string() || !SameId(body_id->get_ref<const std::string&>(), reg_id))) {
    return ErrorResponse(error_code::kRegistrationIdMismatch,
                         "registrationId in the body does not match the path", tracking_id);
  }
  std::optional<attestation::TpmKeys> tpm;
  auto tpm_json = body->find("tpm");
  if (tpm_json != body->end() && !tpm_json->is_null()) {
    auto keys = TpmKeysFromJson(*tpm_json);
    if (!keys) {
      return ErrorResponse(error_code::kInvalidField, keys.error().message(), tracking_id);
    }
    tpm = std::move(*keys);
  }
  std::string_view authorization = request.HeaderValue("authorization");
  if (tpm && authorization.empty()) return TpmChallenge(*tpm, reg_id, tracking_id);
  // Read once: the verifier follows a returning device to its group, allocation keeps its hub.
  auto previous = registry_.GetRegistration(reg_id);
  if (!previous && previous.error().code() != ErrorCode::kNotFound) {
    return Reject(previous.error(), reg_id, tracking_id);
  }
  const registry::Registration* prior = previous ? &*previous : nullptr;
  std::shared_ptr<const std::string> id_scope = id_scope_.Get();
  auto device =
      tpm ? tpm_verifier_.VerifyChallengeResponse(*id_scope, reg_id, authorization, *tpm)
      : UsesCertificate(request)
          ? VerifyCertificate(x509_verifier_, reg_id, request)
          : verifier_.Verify(*id_scope, reg_id, authorization, prior);
  if (!device) return Reject(device.error(), reg_id, tracking_id);

  std::optional<pki::Certificate> issued;
  if (auto csr = body->find("csr"); csr != body->end() && !csr->is_null()) {
    auto certificate = IssueForCsr(*csr, reg_id);
    if (!certificate) {
      if (certificate.error().code() == ErrorCode::kInvalidArgument) {
        return ErrorResponse(error_code::kInvalidField, certificate.error().message(), tracking_id);
      }
      return Reject(certificate.error(), reg_id, tracking_id);
    }
    issued = std::move(*certificate);
  }

  auto assignment = registry::AssignHub(device->settings(), reg_id, options_.hubs, prior);
  if (!assignment) return Reject(assignment.error(), reg_id, tracking_id);

  registry::Registration registration;
  registration.registration_id = reg_id;
  registration.device_id = device->enrollment && !device->enrollment->device_id.empty()
                               ? device->enrollment->device_id
                               : reg_id;
  registration.assigned_hub = assignment->hub;
  registration.status = "assigned";
  registration.substatus = assignment->substatus;
  registration.operation_id = "5." + random_.Hex(8) + "." + random_.Uuid();
  registration.enrollment_group_id = device->group ? device->group->enrollment_group_id : "";
  registration.attestation_type = device->attestation_type;
  registration.device_key = device->device_key;
  registration.tpm_storage_root_key = device->tpm_storage_root_key;
  auto payload = body->find("payload");
  if (payload != body->end() && !payload->is_null()) {
    registration.payload_json = payload->dump();
    registration.response_payload_json = registration.payload_json;
  }
  registration.created = prior ? prior->created : clock_.Now();
  registration.updated = clock_.Now();

  auto stored = registry_.SaveRegistration(registration, registry::Actor{"device:" + reg_id});
  if (!stored) return Reject(stored.error(), reg_id, tracking_id);
  spdlog::debug("device registered: registrationId={} hub={} substatus={} force={}", reg_id,
                stored->assigned_hub, stored->substatus,
                target.QueryValue("forceRegistration") == "true");

  if (issued) {
    auto answer = Answer(*stored, *device, /*bare_state=*/false);
    if (!answer) return Reject(answer.error(), reg_id, tracking_id);
    json chain = json::array({ossl::Base64Encode(issued->ToDer())});
    if (const pki::Certificate* issuer = options_.authority->IssuerOf(*issued)) {
      chain.push_back(ossl::Base64Encode(issuer->ToDer()));
    }
    (*answer)["registrationState"]["issuedCertificateChain"] = std::move(chain);
    return JsonResponse(200, *answer);
  }
  Response response = JsonResponse(202, AssigningJson(*stored));
  response.SetHeader("Retry-After", std::to_string(options_.retry_after_seconds));
  return response;
}

Result<pki::Certificate> DeviceApi::IssueForCsr(const json& csr, const std::string& reg_id) {
  if (options_.authority == nullptr) {
    return std::unexpected(InvalidArgument("csr: this service does not issue certificates"));
  }
  if (!csr.is_string()) return std::unexpected(InvalidArgument("csr must be a base64 string"));
  auto der = ossl::Base64Decode(csr.get_ref<const std::string&>());
  if (!der) return std::unexpected(InvalidArgument("csr is not base64 DER PKCS #10"));
  auto request =
      pki::Csr::FromDer(std::string_view(reinterpret_cast<const char*>(der->data()), der->size()));
  if (!request) {
    return std::unexpected(InvalidArgument("csr: " + request.error().message()));
  }
  auto subject = ca::CheckDeviceCsr(*request, ca::CsrKeyUse::kCertify);
  if (!subject) return std::unexpected(InvalidArgument("csr: " + subject.error().message()));
  if (*subject != reg_id) {
    return std::unexpected(
        InvalidArgument("csr: the subject CN \"" + *subject + "\" is not the registration ID"));
  }
  return ca::IssueRecorded(*options_.authority, registry_, ca::kDeviceClientProfile,
                           {.common_name = reg_id,
                            .public_key = request->public_key(),
                            .public_key_info = request->public_key_info()},
                           reg_id, registry::kAuditCertificateIssue, {"device:" + reg_id});
}

Response DeviceApi::OperationStatus(const Request& request, const std::string& reg_id,
                                    const std::string& operation_id,
                                    const std::string& tracking_id) {
  auto registration = registry_.GetRegistration(reg_id);
  if (!registration && registration.error().code() != ErrorCode::kNotFound) {
    return Reject(registration.error(), reg_id, tracking_id);
  }
  auto device = Authenticate(request, reg_id, registration ? &*registration : nullptr);
  if (!device) return Reject(device.error(), reg_id, tracking_id);
  if (!registration || registration->operation_id != operation_id) {
    return ErrorResponse(error_code::kOperationNotFound,
                         "no operation " + operation_id + " for registration " + reg_id,
                         tracking_id);
  }
  auto answer = Answer(*registration, *device, /*bare_state=*/false);
  if (!answer) return Reject(answer.error(), reg_id, tracking_id);
  return JsonResponse(200, *answer);
}

Response DeviceApi::RegistrationStatus(const Request& request, const std::string& reg_id,
                                       const std::string& tracking_id) {
  auto body = ParseJsonBody(request.body);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto registration = registry_.GetRegistration(reg_id);
  if (!registration && registration.error().code() != ErrorCode::kNotFound) {
    return Reject(registration.error(), reg_id, tracking_id);
  }
  auto device = Authenticate(request, reg_id, registration ? &*registration : nullptr);
  if (!device) return Reject(device.error(), reg_id, tracking_id);
  if (!registration) {
    return ErrorResponse(error_code::kRegistrationNotFound,
                         "registration " + reg_id + " has not registered", tracking_id);
  }
  auto answer = Answer(*registration, *device, /*bare_state=*/true);
  if (!answer) return Reject(answer.error(), reg_id, tracking_id);
  return JsonResponse(200, *answer);
}

}  // namespace devid::api
