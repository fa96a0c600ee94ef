#include "cli/peer_token_symmetric_commands.h"

#include <openssl/crypto.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "base/file.h"
#include "cli/device_command_runner.h"
#include "cli/device_commands.h"
#include "cli/flag_file.h"
#include "devid/peer_token_client.h"
#include "ossl/base64.h"

namespace devid::cli {
namespace {

// ReadBase64File reads a one-line base64 file (a challenge or a proof) named by flag.
Result<std::vector<uint8_t>> ReadBase64File(const std::string& path, std::string_view flag) {
  DEVID_ASSIGN_OR_RETURN(std::string text, ReadFlagFile(path, flag));
  std::string_view line = text;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto bytes = ossl::Base64Decode(line);
  if (!bytes) return std::unexpected(bytes.error().WithContext(flag));
  return bytes;
}

struct ProveOptions {
  std::string session_key_file;
  std::string challenge_file;
  std::string from;
  std::string to;
};

Status Prove(const ProveOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string text,
                         ReadFlagFile(options.session_key_file, "--session-key-file"));
  std::string_view line = text;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto key = sdk::PeerSessionKey::FromBase64(line);
  OPENSSL_cleanse(text.data(), text.size());
  if (!key) return std::unexpected(key.error().WithContext("--session-key-file"));
  DEVID_ASSIGN_OR_RETURN(auto challenge,
                         ReadBase64File(options.challenge_file, "--challenge-file"));
  std::cout << ossl::Base64Encode(
                   sdk::ProveWithSessionKey(*key, challenge, options.from, options.to))
            << "\n";
  return Ok();
}

}  // namespace

Status RequestSymmetricToken(const SymmetricTokenOptions& options, const Endpoint& endpoint,
                             const std::string& trust_bundle_pem, const std::string& to,
                             const std::string& scope) {
  if (options.id_scope.empty() || options.registration_id.empty() ||
      options.session_key_out.empty()) {
    return std::unexpected(InvalidArgument(
        "--symmetric-key-file needs --id-scope, --registration-id and --session-key-out"));
  }
  std::error_code ignored;
  if (std::filesystem::exists(options.session_key_out, ignored)) {
    return std::unexpected(AlreadyExists("--session-key-out: " + options.session_key_out +
                                         " exists; a session key is never overwritten"));
  }
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<sdk::SasCredential> key,
                         SymmetricKey("", options.symmetric_key_file, "--symmetric-key-file"));
  DEVID_ASSIGN_OR_RETURN(sdk::PeerTokenResponse response,
                         sdk::RequestPeerToken({.host = endpoint.host,
                                                .port = endpoint.port,
                                                .trust_bundle_pem = trust_bundle_pem,
                                                .sas_key = std::move(key),
                                                .id_scope = options.id_scope,
                                                .registration_id = options.registration_id,
                                                .audience = to,
                                                .scope = scope}));
  std::string encoded = response.session_key->ToBase64() + "\n";
  Status written = WriteFileAtomically(options.session_key_out, encoded, 0600);
  OPENSSL_cleanse(encoded.data(), encoded.size());
  if (!written) return std::unexpected(written.error().WithContext("--session-key-out"));
  std::cout << response.token << "\n";
  return Ok();
}

Result<std::expected<sdk::VerifiedPeerToken, sdk::PeerTokenError>> AcceptSymmetric(
    sdk::PeerTokenVerifier& verifier, std::string_view token,
    const SymmetricPresentation& presentation, std::string_view scope) {
  if (presentation.challenge_file.empty() || presentation.proof_file.empty()) {
    return std::unexpected(
        InvalidArgument("--symmetric-key-file needs --challenge-file and --proof-file"));
  }
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<sdk::SasCredential> key,
                         SymmetricKey("", presentation.symmetric_key_file,
                                      "--symmetric-key-file"));
  DEVID_ASSIGN_OR_RETURN(auto challenge,
                         ReadBase64File(presentation.challenge_file, "--challenge-file"));
  DEVID_ASSIGN_OR_RETURN(auto proof, ReadBase64File(presentation.proof_file, "--proof-file"));
  return verifier.AcceptWithSessionKey(token, challenge, proof, *key, scope);
}

void AddPeerChallengeCommands(CLI::App& peer, int& exit_code) {
  CLI::App* challenge = peer.add_subcommand(
      "challenge", "Print a fresh random challenge (base64) for a symmetric peer to prove with");
  challenge->callback(
      [] { std::cout << ossl::Base64Encode(sdk::NewPeerChallenge()) << "\n"; });

  auto options = std::make_shared<ProveOptions>();
  CLI::App* prove = peer.add_subcommand(
      "prove", "Answer a peer's challenge with the session key of a symmetric token (base64)");
  prove
      ->add_option("--session-key-file", options->session_key_file,
                   "The session key devid peer token wrote (--session-key-out)")
      ->required();
  prove->add_option("--challenge-file", options->challenge_file, "The peer's challenge (base64)")
      ->required();
  prove->add_option("--from", options->from, "This device's ID (the token's sub)")->required();
  prove->add_option("--to", options->to, "The peer's device ID (the token's aud)")->required();
  prove->callback([options, &exit_code] { ReportStatus(Prove(*options), exit_code); });
}

}  // namespace devid::cli
