#include "cli/peer_commands.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "cli/connection_string.h"
#include "cli/device_command_runner.h"
#include "cli/flag_file.h"
#include "cli/peer_session_commands.h"
#include "cli/peer_token_symmetric_commands.h"
#include "devid/device_key.h"
#include "devid/peer_token.h"
#include "devid/peer_token_client.h"

namespace devid::cli {
namespace {

struct TokenOptions {
  std::string to;
  std::string scope;
  std::string certificate_file;
  std::string key_uri;
  std::string pkcs11_module;
  std::string endpoint;
  std::string trust_bundle_file;
  SymmetricTokenOptions symmetric;
};

Status RequestToken(const TokenOptions& options) {
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  DEVID_ASSIGN_OR_RETURN(std::string bundle,
                         ReadFlagFile(options.trust_bundle_file, "--trust-bundle"));
  if (!options.symmetric.symmetric_key_file.empty()) {
    return RequestSymmetricToken(options.symmetric, endpoint, bundle, options.to, options.scope);
  }
  if (options.certificate_file.empty() || options.key_uri.empty()) {
    return std::unexpected(InvalidArgument("give --cert and --key, or --symmetric-key-file"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFlagFile(options.certificate_file, "--cert"));
  auto key = sdk::OpenDeviceKey(options.key_uri, {.pkcs11_module = options.pkcs11_module});
  if (!key) return std::unexpected(key.error().WithContext("--key"));
  DEVID_ASSIGN_OR_RETURN(sdk::PeerTokenResponse response,
                         sdk::RequestPeerToken({.host = endpoint.host,
                                                .port = endpoint.port,
                                                .trust_bundle_pem = bundle,
                                                .certificate_chain_pem = chain,
                                                .key = *key,
                                                .audience = options.to,
                                                .scope = options.scope}));
  std::cout << response.token << "\n";
  return Ok();
}

struct VerifyTokenOptions {
  std::string token_file;
  std::string audience;
  std::string signer_file;
  std::string peer_certificate_file;
  std::string scope;
  int clock_skew_seconds = 60;
  SymmetricPresentation symmetric;
};

Status VerifyToken(const VerifyTokenOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string token, ReadFlagFile(options.token_file, "reading the token"));
  DEVID_ASSIGN_OR_RETURN(std::string signers, ReadFlagFile(options.signer_file, "--signer"));
  bool symmetric = !options.symmetric.symmetric_key_file.empty();
  if (symmetric == !options.peer_certificate_file.empty()) {
    return std::unexpected(InvalidArgument("give one of --peer-cert and --symmetric-key-file"));
  }
  SystemClock clock;
  DEVID_ASSIGN_OR_RETURN(auto verifier,
                         sdk::PeerTokenVerifier::Create(
                             {.audience = options.audience,
                              .signer_certificates_pem = signers,
                              .clock_skew = std::chrono::seconds(options.clock_skew_seconds)},
                             clock));
  std::expected<sdk::VerifiedPeerToken, sdk::PeerTokenError> accepted;
  if (symmetric) {
    DEVID_ASSIGN_OR_RETURN(accepted,
                           AcceptSymmetric(*verifier, token, options.symmetric, options.scope));
  } else {
    DEVID_ASSIGN_OR_RETURN(std::string peer_pem,
                           ReadFlagFile(options.peer_certificate_file, "--peer-cert"));
    auto peer = pki::Certificate::FromPem(peer_pem);
    if (!peer) return std::unexpected(peer.error().WithContext("--peer-cert"));
    accepted = verifier->Accept(token, *peer, options.scope);
  }
  if (!accepted) {
    return std::unexpected(PermissionDenied(
        "token refused (" + std::string(sdk::PeerTokenRefusalName(accepted.error().reason)) +
        "): " + accepted.error().message));
  }
  nlohmann::ordered_json claims = {
      {"iss", accepted->issuer},   {"sub", accepted->subject},
      {"aud", accepted->audience}, {"scope", accepted->scopes},
      {"jti", accepted->jti},      {"expiresAt", FormatUtc(accepted->expires_at)}};
  std::cout << claims.dump() << "\n";
  return Ok();
}

}  // namespace

void AddPeerCommands(CLI::App& app, int& exit_code) {
  CLI::App* peer = app.add_subcommand("peer", "Introduce devices to each other (peer tokens)");
  peer->require_subcommand(1);

  auto token_options = std::make_shared<TokenOptions>();
  CLI::App* token =
      peer->add_subcommand("token", "Ask devid's token authority for a token to a peer");
  token->add_option("--to", token_options->to, "The peer's device ID or a service name")
      ->required();
  token->add_option("--scope", token_options->scope, "Space-separated scope words")->required();
  token->add_option("--cert", token_options->certificate_file, "This device's devid certificate");
  token->add_option("--key", token_options->key_uri,
                    "URI of its key (file:, pkcs11: or tpm2:), which signs the TLS handshake");
  token->add_option("--symmetric-key-file", token_options->symmetric.symmetric_key_file,
                    "Instead of --cert/--key: this device's base64 SAS key (symmetric token)");
  token->add_option("--id-scope", token_options->symmetric.id_scope,
                    "The service's ID scope (with --symmetric-key-file)");
  token->add_option("--registration-id", token_options->symmetric.registration_id,
                    "This device's registration ID (with --symmetric-key-file)");
  token->add_option("--session-key-out", token_options->symmetric.session_key_out,
                    "File (mode 0600) for the session key (with --symmetric-key-file)");
  token->add_option("--pkcs11-module", token_options->pkcs11_module,
                    "PKCS #11 library for URIs without module-path");
  token->add_option("--endpoint", token_options->endpoint, "devid's https:// device endpoint")
      ->required();
  token
      ->add_option("--trust-bundle", token_options->trust_bundle_file,
                   "PEM of the CA certificates devid's server certificate chains to")
      ->required();
  token->callback(
      [token_options, &exit_code] { ReportStatus(RequestToken(*token_options), exit_code); });

  auto verify_options = std::make_shared<VerifyTokenOptions>();
  CLI::App* verify = peer->add_subcommand(
      "verify-token", "Check a peer token offline; print its claims only when it is accepted");
  verify->add_option("file", verify_options->token_file, "The token (JWS compact)")->required();
  verify->add_option("--audience", verify_options->audience, "This device's ID (the token's aud)")
      ->required();
  verify
      ->add_option("--signer", verify_options->signer_file,
                   "PEM of the pinned token-signer certificate(s) (token-signer.pem)")
      ->required();
  verify->add_option("--peer-cert", verify_options->peer_certificate_file,
                     "PEM of the certificate the peer presented over TLS (proof of possession)");
  verify->add_option("--symmetric-key-file", verify_options->symmetric.symmetric_key_file,
                     "Instead of --peer-cert: this device's base64 SAS key (symmetric token)");
  verify->add_option("--challenge-file", verify_options->symmetric.challenge_file,
                     "The challenge this device issued (devid peer challenge)");
  verify->add_option("--proof-file", verify_options->symmetric.proof_file,
                     "The peer's answer (devid peer prove)");
  verify->add_option("--scope", verify_options->scope, "Scope words the peer must hold");
  verify
      ->add_option("--clock-skew", verify_options->clock_skew_seconds,
                   "Seconds of clock difference to allow for (at most 300)")
      ->check(CLI::Range(0, 300))
      ->capture_default_str();
  verify->callback(
      [verify_options, &exit_code] { ReportStatus(VerifyToken(*verify_options), exit_code); });

  AddPeerSessionCommands(*peer, exit_code);
  AddPeerChallengeCommands(*peer, exit_code);
}

}  // namespace devid::cli
