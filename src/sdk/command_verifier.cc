#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "devid/command.h"
#include "sdk/pinned_jws_verifier.h"

namespace devid::sdk {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

// What a command envelope is (RFC 7515 §4.1.9 typ as the server's ca::kCommandEnvelopeType).
constexpr JwsKind kCommandKind{.typ = "devid-command+jws",
                               .noun = "command",
                               .description = "devid command",
                               .signer = "command signer",
                               .only = "only commands signed by your server are obeyed"};

std::unexpected<CommandError> Refuse(CommandRefusal reason, std::string message) {
  return std::unexpected(CommandError{reason, std::move(message)});
}

CommandRefusal FromJwsRefusal(JwsRefusal reason) {
  switch (reason) {
    case JwsRefusal::kMalformed:
      return CommandRefusal::kMalformed;
    case JwsRefusal::kUnsigned:
      return CommandRefusal::kUnsigned;
    case JwsRefusal::kUnknownSigner:
      return CommandRefusal::kUnknownSigner;
    case JwsRefusal::kBadSignature:
      return CommandRefusal::kBadSignature;
    case JwsRefusal::kSignerNotValid:
      return CommandRefusal::kSignerNotValid;
  }
  return CommandRefusal::kMalformed;
}

system_clock::time_point FromUnixSeconds(int64_t seconds) {
  return system_clock::time_point(std::chrono::seconds(seconds));
}

// StateFile is the last accepted sequence number of one device.
struct State {
  std::string device_id;
  int64_t last_sequence = 0;
};

Result<State> ReadState(const std::string& path, const std::string& device_id) {
  if (!std::filesystem::exists(path)) return State{device_id, 0};
  DEVID_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("deviceId") ||
      !doc["deviceId"].is_string() || !doc.contains("lastSequence") ||
      !doc["lastSequence"].is_number_integer()) {
    return std::unexpected(
        InvalidArgument("the command state file " + path + " is not a devid command state file"));
  }
  State state{doc["deviceId"].get<std::string>(), doc["lastSequence"].get<int64_t>()};
  if (state.device_id != device_id) {
    return std::unexpected(InvalidArgument("the command state file " + path +
                                           " belongs to device \"" + state.device_id +
                                           "\", not \"" + device_id + "\""));
  }
  return state;
}

}  // namespace

std::string_view CommandRefusalName(CommandRefusal reason) {
  switch (reason) {
    case CommandRefusal::kMalformed:
      return "malformed";
    case CommandRefusal::kUnsigned:
      return "unsigned";
    case CommandRefusal::kUnknownSigner:
      return "unknown-signer";
    case CommandRefusal::kBadSignature:
      return "bad-signature";
    case CommandRefusal::kSignerNotValid:
      return "signer-not-valid";
    case CommandRefusal::kOtherDevice:
      return "other-device";
    case CommandRefusal::kExpired:
      return "expired";
    case CommandRefusal::kNotYetValid:
      return "not-yet-valid";
    case CommandRefusal::kReplayed:
      return "replayed";
    case CommandRefusal::kStateUnavailable:
      return "state-unavailable";
  }
  return "unknown";
}

CommandVerifier::CommandVerifier(CommandVerifierOptions options,
                                 std::unique_ptr<PinnedJwsVerifier> signers, const Clock& clock)
    : options_(std::move(options)), signers_(std::move(signers)), clock_(clock) {}

CommandVerifier::~CommandVerifier() = default;

Result<std::unique_ptr<CommandVerifier>> CommandVerifier::Create(CommandVerifierOptions options,
                                                                 const Clock& clock) {
  if (options.device_id.empty()) {
    return std::unexpected(InvalidArgument("verifying commands: the device ID is empty"));
  }
  if (options.clock_skew < std::chrono::seconds(0) || options.clock_skew > kMaxCommandClockSkew) {
    return std::unexpected(InvalidArgument("verifying commands: the clock skew must be 0 to " +
                                           std::to_string(kMaxCommandClockSkew.count()) +
                                           " seconds"));
  }
  if (options.state_file.empty()) {
    return std::unexpected(InvalidArgument("verifying commands: no state file is given"));
  }
  DEVID_TRY(ReadState(options.state_file, options.device_id));
  auto signers = PinnedJwsVerifier::Create(options.signer_certificates_pem, "verifying commands");
  if (!signers) return std::unexpected(signers.error());
  return std::unique_ptr<CommandVerifier>(
      new CommandVerifier(std::move(options), std::move(*signers), clock));
}

std::expected<VerifiedCommand, CommandError> CommandVerifier::Accept(std::string_view envelope) {
  auto checked = Check(envelope);
  if (!checked) {
    spdlog::warn("command refused ({}) for device {}: {}",
                 CommandRefusalName(checked.error().reason), options_.device_id,
                 checked.error().message);
  } else {
    spdlog::info("command {} accepted for device {}", checked->sequence, checked->device_id);
  }
  return checked;
}

std::expected<VerifiedCommand, CommandError> CommandVerifier::Check(std::string_view envelope) {
  if (envelope.size() > options_.max_envelope_bytes) {
    return Refuse(CommandRefusal::kMalformed,
                  "the command is " + std::to_string(envelope.size()) + " bytes, over the " +
                      std::to_string(options_.max_envelope_bytes) + "-byte limit");
  }
  system_clock::time_point now = clock_.Now();
  auto verified = signers_->Verify(envelope, kCommandKind, now);
  if (!verified) {
    return Refuse(FromJwsRefusal(verified.error().reason), verified.error().message);
  }
  json claims = json::parse(verified->payload, nullptr, false);
  if (!claims.is_object() || !claims.contains("deviceId") || !claims["deviceId"].is_string() ||
      !claims.contains("seq") || !claims["seq"].is_number_integer() || !claims.contains("iat") ||
      !claims["iat"].is_number_integer() || !claims.contains("exp") ||
      !claims["exp"].is_number_integer() || !claims.contains("command")) {
    return Refuse(CommandRefusal::kMalformed,
                  "the command's claims lack deviceId, seq, iat, exp or command");
  }
  VerifiedCommand command;
  command.device_id = claims["deviceId"].get<std::string>();
  command.sequence = claims["seq"].get<int64_t>();
  command.issued_at = FromUnixSeconds(claims["iat"].get<int64_t>());
  command.expires_at = FromUnixSeconds(claims["exp"].get<int64_t>());
  command.command_json = claims["command"].dump();
  command.signer_thumbprint = verified->signer->Sha256Thumbprint();
  if (command.device_id != options_.device_id) {
    return Refuse(CommandRefusal::kOtherDevice, "the command is for device \"" + command.device_id +
                                                    "\", not this one (\"" + options_.device_id +
                                                    "\")");
  }
  if (command.sequence < 1) {
    return Refuse(CommandRefusal::kMalformed, "the command's sequence number is below 1");
  }
  if (now > command.expires_at + options_.clock_skew) {
    return Refuse(CommandRefusal::kExpired, "command " + std::to_string(command.sequence) +
                                                " expired at " + FormatUtc(command.expires_at) +
                                                " (now " + FormatUtc(now) + ")");
  }
  if (command.issued_at > now + options_.clock_skew) {
    return Refuse(CommandRefusal::kNotYetValid, "command " + std::to_string(command.sequence) +
                                                    " is dated " + FormatUtc(command.issued_at) +
                                                    ", in the future (now " + FormatUtc(now) +
                                                    "): check this device's clock");
  }
  auto state = ReadState(options_.state_file, options_.device_id);
  if (!state) return Refuse(CommandRefusal::kStateUnavailable, state.error().message());
  if (command.sequence <= state->last_sequence) {
    return Refuse(CommandRefusal::kReplayed,
                  "command " + std::to_string(command.sequence) +
                      " is a replay: this device already accepted command " +
                      std::to_string(state->last_sequence));
  }
  json next = {{"deviceId", options_.device_id}, {"lastSequence", command.sequence}};
  // Recorded before the command is handed out: a crash after this loses a command, never runs
  // one twice.
  if (auto written = WriteFileAtomically(options_.state_file, next.dump() + "\n", 0600); !written) {
    return Refuse(
        CommandRefusal::kStateUnavailable,
        "recording command " + std::to_string(command.sequence) + ": " + written.error().message());
  }
  return command;
}

}  // namespace devid::sdk
