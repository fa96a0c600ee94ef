#include "cli/verify_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "cli/device_command_runner.h"
#include "cli/flag_file.h"
#include "devid/command.h"

namespace devid::cli {
namespace {

struct VerifyOptions {
  std::string envelope_file;
  std::string device_id;
  std::string signer_file;
  std::string state_file;
  int clock_skew_seconds = 60;
};

Status Verify(const VerifyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string envelope,
                         ReadFlagFile(options.envelope_file, "reading the command"));
  DEVID_ASSIGN_OR_RETURN(std::string signers, ReadFlagFile(options.signer_file, "--signer"));
  SystemClock clock;
  DEVID_ASSIGN_OR_RETURN(
      auto verifier,
      sdk::CommandVerifier::Create({.device_id = options.device_id,
                                    .signer_certificates_pem = signers,
                                    .state_file = options.state_file,
                                    .clock_skew = std::chrono::seconds(options.clock_skew_seconds)},
                                   clock));
  auto accepted = verifier->Accept(envelope);
  if (!accepted) {
    return std::unexpected(PermissionDenied(
        "command refused (" + std::string(sdk::CommandRefusalName(accepted.error().reason)) +
        "): " + accepted.error().message));
  }
  std::cout << accepted->command_json << "\n";
  return Ok();
}

}  // namespace

void AddVerifyCommand(CLI::App& device, int& exit_code) {
  auto options = std::make_shared<VerifyOptions>();
  CLI::App* verify = device.add_subcommand(
      "verify-command", "Check a server-signed command; print its JSON only when it is accepted");
  verify->add_option("file", options->envelope_file, "The signed command (JWS compact)")
      ->required();
  verify->add_option("--device-id", options->device_id, "This device's registration ID")
      ->required();
  verify
      ->add_option("--signer", options->signer_file,
                   "PEM of the pinned command-signer certificate(s) (command-signer.pem)")
      ->required();
  verify
      ->add_option("--state", options->state_file,
                   "File that keeps the last accepted sequence number (created, mode 0600)")
      ->required();
  verify
      ->add_option("--clock-skew", options->clock_skew_seconds,
                   "Seconds of clock difference to allow for (at most 300)")
      ->check(CLI::Range(0, 300))
      ->capture_default_str();
  verify->callback([options, &exit_code] { ReportStatus(Verify(*options), exit_code); });
}

}  // namespace devid::cli
