#include "api/command_api.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "base/hex.h"
#include "ossl/mac.h"

namespace devid::api {
namespace {

using nlohmann::json;

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Ttl reads ?ttl= (whole seconds, 1..max); absent = the default.
Result<std::chrono::seconds> Ttl(const Target& target, const CommandApiOptions& options) {
  std::string_view text = target.QueryValue("ttl");
  if (text.empty()) return options.default_ttl;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || seconds < 1 ||
      seconds > options.max_ttl.count()) {
    return std::unexpected(InvalidArgument("ttl must be a whole number of seconds from 1 to " +
                                           std::to_string(options.max_ttl.count())));
  }
  return std::chrono::seconds(seconds);
}

}  // namespace

bool CommandApi::Matches(const Target& target) const {
  return target.segments.size() == 3 && target.SegmentIs(0, "devices") &&
         target.SegmentIs(2, "commands");
}

Response CommandApi::Handle(const Request& request, const Target& target,
                            std::string_view tracking_id) {
  if (request.method != "POST") {
    return ErrorResponse(error_code::kMethodNotAllowed, target.path + " takes POST", tracking_id);
  }
  // Commanding a device is the most powerful thing the service API does, so it takes the right
  // only owner-like policies hold, not the enrollment or registration rights.
  auto actor =
      AuthorizeServiceRequest(auth_, request, target, ServiceRight::kServiceConfig, tracking_id);
  if (!actor) return std::move(actor.error());
  const std::string& device_id = target.segments[1];
  if (device_id.empty()) {
    return ErrorResponse(error_code::kInvalidField, "the device ID is empty", tracking_id);
  }
  if (request.body.size() > options_.max_command_bytes) {
    return ErrorResponse(error_code::kCommandTooLarge,
                         "the command is " + std::to_string(request.body.size()) +
                             " bytes; at most " + std::to_string(options_.max_command_bytes) +
                             " are signed",
                         tracking_id);
  }
  auto command = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!command || !command->is_object()) {
    return ErrorResponse(error_code::kInvalidCommand, "the command must be a JSON object",
                         tracking_id);
  }
  auto ttl = Ttl(target, options_);
  if (!ttl) return ErrorResponse(error_code::kInvalidCommand, ttl.error().message(), tracking_id);
  auto signer = signer_();
  if (!signer) {
    spdlog::error("signing a command for {}: {} trackingId={}", device_id, signer.error().message(),
                  tracking_id);
    return ErrorResponse(error_code::kCommandSignerUnavailable,
                         "the command signer is unavailable; see the server log for trackingId " +
                             std::string(tracking_id),
                         tracking_id);
  }
  std::string command_text = command->dump();
  registry::DeviceCommand record;
  record.device_id = device_id;
  record.expires = clock_.Now() + *ttl;
  record.body_sha256 = HexEncode(ossl::Sha256(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(command_text.data()), command_text.size())));
  auto stored = registry_.AddDeviceCommand(record, registry::Actor{*actor});
  if (!stored) {
    if (stored.error().code() == ErrorCode::kNotFound) {
      return ErrorResponse(error_code::kRegistrationNotFound,
                           "device \"" + device_id + "\" has not registered", tracking_id);
    }
    return ErrorResponseFor(stored.error(), tracking_id);
  }
  nlohmann::ordered_json payload = {{"deviceId", device_id},
                                    {"seq", stored->sequence},
                                    {"iat", UnixSeconds(stored->issued)},
                                    {"exp", UnixSeconds(stored->expires)},
                                    {"command", *command}};
  auto envelope = (*signer)->Sign(payload.dump());
  if (!envelope) {
    spdlog::error("signing command {} for {}: {} trackingId={}", stored->sequence, device_id,
                  envelope.error().message(), tracking_id);
    return ErrorResponse(error_code::kCommandSignerUnavailable,
                         "the command signer is unavailable; see the server log for trackingId " +
                             std::string(tracking_id),
                         tracking_id);
  }
  spdlog::info("signed command {} for {} (sha256 {}) valid until {} by {}", stored->sequence,
               device_id, record.body_sha256, FormatUtc(stored->expires), *actor);
  if (request.HeaderValue("accept").find("application/jose") != std::string_view::npos) {
    Response response;
    response.status = 201;
    response.SetHeader("content-type", "application/jose");
    response.SetHeader("x-devid-command-sequence", std::to_string(stored->sequence));
    response.body = std::move(*envelope);
    return response;
  }
  return JsonResponse(201, {{"deviceId", device_id},
                            {"sequence", stored->sequence},
                            {"issuedAt", FormatUtc(stored->issued)},
                            {"expiresAt", FormatUtc(stored->expires)},
                            {"signerThumbprint", (*signer)->certificate().Sha256Thumbprint()},
                            {"envelope", *envelope}});
}

}  // namespace devid::api
