#include "api/token_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "pki/x5t.h"

namespace devid::api {
namespace {

using nlohmann::json;

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

Result<ca::TokenParty> TokenApi::Party(const std::string& id) {
  // A device is known by its registration (with the group it came through), or else by an
  // individual enrollment it has not registered under yet (a device enrolled through EST).
  auto registration = registry_.GetRegistration(id);
  if (registration) return ca::TokenParty{.id = id, .group = registration->enrollment_group_id};
  if (registration.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(registration.error());
  }
  auto enrollment = registry_.GetEnrollment(id);
  if (enrollment) return ca::TokenParty{.id = id};
  return std::unexpected(enrollment.error());
}

Status TokenApi::CheckEnabled(const ca::TokenParty& device) {
  // As for EST: a certificate outlives a disabled enrollment, which still decides; the
  // individual one when there is one, else the group the device registered through.
  auto enrollment = registry_.GetEnrollment(device.id);
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

Response TokenApi::Handle(const Request& request, const Target& target,
                          std::string_view tracking_id) {
  if (request.method != "POST") {
    return ErrorResponse(error_code::kMethodNotAllowed, target.path + " takes POST", tracking_id);
  }
  if (request.peer_certificates_der.empty() || request.peer_certificates_der.front().empty()) {
    if (!request.HeaderValue("authorization").empty()) {
      return ErrorResponse(error_code::kTokenNeedsCertificate,
                           "peer tokens are issued to devices that authenticate with their devid "
                           "certificate over TLS; SAS-authenticated devices cannot obtain them yet",
                           tracking_id);
    }
    return ErrorResponse(error_code::kMissingAuthorization,
                         "present the device certificate devid issued as the TLS client "
                         "certificate",
                         tracking_id);
  }
  auto certificate = pki::Certificate::FromDer(request.peer_certificates_der.front());
  if (!certificate) return ErrorResponseFor(certificate.error(), tracking_id);
  auto client = certificates_.Verify(std::move(*certificate));
  if (!client) return ErrorResponseFor(client.error(), tracking_id);
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
  auto known = Party(client->registration_id);
  if (!known && known.error().code() != ErrorCode::kNotFound) {
    return ErrorResponseFor(known.error(), tracking_id);
  }
  ca::TokenParty from = known ? *known : ca::TokenParty{.id = client->registration_id};
  if (auto enabled = CheckEnabled(from); !enabled) {
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
  auto issued = issuer_.Issue({.subject = from.id,
                               .audience = to->id,
                               .scope = granted_scope,
                               .x5t_s256 = pki::X5tS256(client->certificate)});
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
  return JsonResponse(200, {{"access_token", issued->token},
                            {"token_type", "PoP"},
                            {"expires_in", ttl.count()},
                            {"scope", granted_scope}});
}

}  // namespace devid::api
