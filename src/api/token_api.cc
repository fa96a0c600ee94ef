#include "api/token_api.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <optional>
#include <nlohmann/json.hpp>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "api/token_session_key.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "pki/x5t.h"

namespace devid::api {
namespace {

using nlohmann::json;

// SessionKey holds a session key and cleanses it when it goes.
struct SessionKey {
  std::array<uint8_t, 32> bytes{};
  ~SessionKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

Result<std::string> RequiredString(const json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    return std::unexpected(
        InvalidArgument(std::string("the request needs \"") + field + "\", a non-empty string"));
  }
  return it->get<std::string>();
}

}  // namespace

bool TokenApi::Matches(const Target& target) const {
  return target.segments.size() == 1 && target.SegmentIs(0, "tokens");
}

Result<ca::TokenParty> TokenApi::Party(const std::string& id,
                                       std::optional<registry::Enrollment>* enrollment_read) {
  // A device is known by its registration (with the group it came through), or else by an
  // individual enrollment it has not registered under yet (a device enrolled through EST).
  auto registration = registry_.GetRegistration(id);
  if (registration) return ca::TokenParty{.id = id, .group = registration->enrollment_group_id};
  if (registration.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(registration.error());
  }
  auto enrollment = registry_.GetEnrollment(id);
  if (!enrollment) return std::unexpected(enrollment.error());
  if (enrollment_read != nullptr) *enrollment_read = std::move(*enrollment);
  return ca::TokenParty{.id = id};
}

Status TokenApi::CheckEnabled(const ca::TokenParty& device,
                              std::optional<registry::Enrollment> enrollment_read) {
  // As for EST: a certificate outlives a disabled enrollment, which still decides; the
  // individual one when there is one, else the group the device registered through.
  Result<registry::Enrollment> enrollment =
      enrollment_read ? Result<registry::Enrollment>(std::move(*enrollment_read))
                      : registry_.GetEnrollment(device.id);
  if (enrollment) {
    if (enrollment->settings.enabled) return Ok();
    return std::unexpected(PermissionDenied("the enrollment of " + device.id + " is disabled"));
  }
  if (enrollment.error().code() != ErrorCode::kNotFound) return std::unexpected(enrollment.error());
  if (device.group.empty()) return Ok();
  auto group = registry_.GetEnrollmentGroup(device.group);
  if (!group) {
    if (group.error().code() == ErrorCode::kNotFound) return Ok();
    return std::unexpected(group.error());
  }
  if (group->settings.enabled) return Ok();
  return std::unexpected(PermissionDenied("the enrollment group " + device.group + " of " +
                                          device.id + " is disabled"));
}

Result<ca::TokenParty> TokenApi::Audience(const std::string& audience) {
  bool service = std::find(policy_.services.begin(), policy_.services.end(), audience) !=
                 policy_.services.end();
  auto device = Party(audience);
  if (!device && device.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(device.error());
  }
  // A device known under a service's name would accept tokens meant for the service.
  if (service && device) {
    return std::unexpected(AlreadyExists("\"" + audience +
                                         "\" is both a configured service and a known device; "
                                         "rename the service in [tokens] services"));
  }
  if (service) return ca::TokenParty{.id = audience, .service = true};
  if (!device) {
    return std::unexpected(
        NotFound("\"" + audience + "\" is neither a known device nor a configured service"));
  }
  return device;
}

Result<std::string> TokenApi::AuthenticateSas(std::string_view authorization) {
  // The registration ID is the one the token names ({idScope}/registrations/{id}); the verifier
  // then checks scope, expiry and signature as for registration and EST.
  DEVID_ASSIGN_OR_RETURN(pki::SasToken token, pki::ParseSasToken(authorization));
  constexpr std::string_view kRegistrations = "/registrations/";
  size_t at = token.resource.find(kRegistrations);
  if (at == std::string::npos) {
    return std::unexpected(
        Unauthenticated("the SAS token does not name {idScope}/registrations/{registrationId}"));
  }
  std::string registration_id = token.resource.substr(at + kRegistrations.size());
  std::shared_ptr<const std::string> id_scope = id_scope_.Get();
  DEVID_ASSIGN_OR_RETURN(attestation::VerifiedDevice device,
                         sas_verifier_.Verify(*id_scope, registration_id, authorization));
  return device.registration_id;
}

Result<std::vector<uint8_t>> TokenApi::SymmetricKey(const ca::TokenParty& device) {
  using registry::AttestationType;
  const Error none = FailedPrecondition(
      "\"" + device.id +
      "\" is not a symmetric-key device: a SAS-authenticated device's session key can only be "
      "sealed for a device holding a symmetric key (ask with the device certificate instead)");
  if (device.service) return std::unexpected(none);
  std::string key_base64;
  auto enrollment = registry_.GetEnrollment(device.id);
  if (enrollment) {
    if (enrollment->settings.attestation.type != AttestationType::kSymmetricKey) {
      return std::unexpected(none);
    }
    key_base64 = enrollment->settings.attestation.symmetric_key.primary_key;
  } else if (enrollment.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(enrollment.error());
  } else {
    if (device.group.empty()) return std::unexpected(none);
    auto group = registry_.GetEnrollmentGroup(device.group);
    if (!group) {
      if (group.error().code() == ErrorCode::kNotFound) return std::unexpected(none);
      return std::unexpected(group.error());
    }
    const std::string& group_key = group->settings.attestation.symmetric_key.primary_key;
    if (group->settings.attestation.type != AttestationType::kSymmetricKey || group_key.empty()) {
      return std::unexpected(none);
    }
    DEVID_ASSIGN_OR_RETURN(key_base64, pki::DeriveSymmetricKey(group_key, device.id));
  }
  auto key = ossl::Base64Decode(key_base64);
  if (key_base64.empty() || !key || key->empty()) return std::unexpected(none);
  return std::move(*key);
}

Response TokenApi::Handle(const Request& request, const Target& target,
                          std::string_view tracking_id) {
  if (request.method != "POST") {
    return ErrorResponse(error_code::kMethodNotAllowed, target.path + " takes POST", tracking_id);
  }
  bool by_certificate = request.HasPeerCertificate();
  std::string_view authorization = request.HeaderValue("authorization");
  if (!by_certificate && authorization.empty()) {
    return ErrorResponse(error_code::kMissingAuthorization,
                         "present the device certificate devid issued as the TLS client "
                         "certificate, or the device's SAS token in Authorization",
                         tracking_id);
  }
  // The requester's certificate, enrollment and the audience, as of one moment.
  std::unique_ptr<registry::Registry::ReadScope> reads = registry_.ReadConsistently();
  std::string requester;
  std::optional<ca::AuthenticatedCertificate> client;
  if (by_certificate) {
    auto certificate = request.PeerLeaf();
    if (!certificate) return ErrorResponseFor(certificate.error(), tracking_id);
    auto verified = certificates_.Verify(std::move(*certificate));
    if (!verified) return ErrorResponseFor(verified.error(), tracking_id);
    requester = verified->registration_id;
    client = std::move(*verified);
  } else {
    auto verified = AuthenticateSas(authorization);
    if (!verified) {
      if (verified.error().code() == ErrorCode::kPermissionDenied) {
        return ErrorResponse(error_code::kEnrollmentDisabled, verified.error().message(),
                             tracking_id);
      }
      return ErrorResponseFor(verified.error(), tracking_id);
    }
    requester = std::move(*verified);
  }
  if (request.body.size() > kMaxRequestBytes) {
    return ErrorResponse(error_code::kInvalidTokenRequest,
                         "the token request is over " + std::to_string(kMaxRequestBytes) + " bytes",
                         tracking_id);
  }
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidTokenRequest,
                         "the token request must be a JSON object {\"audience\", \"scope\"}",
                         tracking_id);
  }
  auto audience = RequiredString(*body, "audience");
  auto scope = audience ? RequiredString(*body, "scope") : Result<std::string>();
  if (!audience || !scope) {
    return ErrorResponse(error_code::kInvalidTokenRequest,
                         (!audience ? audience : scope).error().message(), tracking_id);
  }
  auto scopes = ca::SplitScope(*scope);
  if (!scopes) {
    return ErrorResponse(error_code::kInvalidTokenRequest, scopes.error().message(), tracking_id);
  }
  auto to = Audience(*audience);
  if (!to) {
    if (to.error().code() == ErrorCode::kNotFound) {
      return ErrorResponse(error_code::kTokenAudienceNotFound, to.error().message(), tracking_id);
    }
    if (to.error().code() == ErrorCode::kAlreadyExists) {
      return ErrorResponse(error_code::kTokenAudienceAmbiguous, to.error().message(), tracking_id);
    }
    return ErrorResponseFor(to.error(), tracking_id);
  }
  // The certificate proved who asks; a device no longer known (its enrollment deleted) asks
  // with no group, so only rules naming it may match.
  std::optional<registry::Enrollment> requester_enrollment;
  auto known = Party(requester, &requester_enrollment);
  if (!known && known.error().code() != ErrorCode::kNotFound) {
    return ErrorResponseFor(known.error(), tracking_id);
  }
  ca::TokenParty from = known ? *known : ca::TokenParty{.id = requester};
  if (auto enabled = CheckEnabled(from, std::move(requester_enrollment)); !enabled) {
    if (enabled.error().code() == ErrorCode::kPermissionDenied) {
      return ErrorResponse(error_code::kEnrollmentDisabled, enabled.error().message(), tracking_id);
    }
    return ErrorResponseFor(enabled.error(), tracking_id);
  }
  if (auto allowed = ca::AuthorizeToken(policy_, from, *to, *scopes); !allowed) {
    spdlog::info("peer token refused: {} trackingId={}", allowed.error().message(), tracking_id);
    return ErrorResponse(error_code::kTokenDenied, allowed.error().message(), tracking_id);
  }
  std::string granted_scope;
  for (const std::string& word : *scopes) {
    granted_scope += (granted_scope.empty() ? "" : " ") + word;
  }
  PeerTokenGrant grant{.subject = from.id, .audience = to->id, .scope = granted_scope};
  SessionKey session_key;
  if (client) {
    // The inventory found the certificate by this thumbprint: no need to hash it again.
    grant.x5t_s256 = pki::X5tS256FromThumbprint(client->record.sha256_thumbprint);
  } else {
    // The Kerberos shape: a fresh session key, for A in this answer and for B in the token.
    auto key = SymmetricKey(*to);
    if (!key) {
      if (key.error().code() == ErrorCode::kFailedPrecondition) {
        return ErrorResponse(error_code::kTokenAudienceNotSymmetric, key.error().message(),
                             tracking_id);
      }
      return ErrorResponseFor(key.error(), tracking_id);
    }
    std::array<uint8_t, 32> kek = PeerKek(*key, to->id);
    OPENSSL_cleanse(key->data(), key->size());
    random_.Fill(session_key.bytes.data(), session_key.bytes.size());
    auto sealed = SealSessionKey(kek, session_key.bytes);
    OPENSSL_cleanse(kek.data(), kek.size());
    if (!sealed) return ErrorResponseFor(sealed.error(), tracking_id);
    grant.cnf_jwe = std::move(*sealed);
  }
  auto issued = issuer_.Issue(grant);
  if (!issued) {
    spdlog::error("{} trackingId={}", issued.error().message(), tracking_id);
    return ErrorResponse(error_code::kTokenSignerUnavailable,
                         "the token signer is unavailable; see the server log for trackingId " +
                             std::string(tracking_id),
                         tracking_id);
  }
  // Audited before it leaves: a token the log does not know of is never handed out.
  std::string outcome = "aud=" + to->id + " scope=" + granted_scope + " jti=" + issued->jti +
                        " exp=" + FormatUtc(issued->expires_at);
  if (auto audited = registry_.RecordAudit(kAuditTokenIssue, from.id, outcome,
                                           registry::Actor{"device:" + from.id});
      !audited) {
    return ErrorResponseFor(audited.error(), tracking_id);
  }
  auto ttl =
      std::chrono::duration_cast<std::chrono::seconds>(issued->expires_at - issued->issued_at);
  json answer = {{"access_token", issued->token},
                 {"token_type", "PoP"},
                 {"expires_in", ttl.count()},
                 {"scope", granted_scope}};
  if (client) return JsonResponse(200, answer);
  // RFC 9200 §5.8.2 returns a symmetric PoP key to the client beside the token; like EST
  // serverkeygen's private key, the body is cleansed once written and never logged.
  std::string encoded = ossl::Base64Encode(session_key.bytes);
  answer["session_key"] = encoded;
  OPENSSL_cleanse(encoded.data(), encoded.size());
  Response response = JsonResponse(200, answer);
  OPENSSL_cleanse(answer["session_key"].get_ref<std::string&>().data(), encoded.size());
  response.sensitive_body = true;
  return response;
}

std::optional<Response> TokenApi::TryHandleNow(const Request& request, const Target& target) {
  if (!answer_without_blocking_) return std::nullopt;
  // The I/O thread must not wait for a read connection the handler threads hold: then the
  // request goes to one of them. Handle reads through this scope.
  std::unique_ptr<registry::Registry::ReadScope> reads = registry_.TryReadConsistently();
  if (reads == nullptr) return std::nullopt;
  // Router gives the requests it answers on a handler thread their tracking ID; this one
  // answers here.
  std::string tracking_id = random_.Uuid();
  Response response = Handle(request, target, tracking_id);
  response.SetHeader("x-ms-request-id", tracking_id);
  return response;
}

}  // namespace devid::api
