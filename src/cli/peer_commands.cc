#include "cli/peer_commands.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "cli/connection_string.h"
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
};

Status RequestToken(const TokenOptions& options) {
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  auto bundle = ReadFile(options.trust_bundle_file);
  if (!bundle) return std::unexpected(bundle.error().WithContext("--trust-bundle"));
  auto chain = ReadFile(options.certificate_file);
  if (!chain) return std::unexpected(chain.error().WithContext("--cert"));
  auto key = sdk::OpenDeviceKey(options.key_uri, {.pkcs11_module = options.pkcs11_module});
  if (!key) return std::unexpected(key.error().WithContext("--key"));
  DEVID_ASSIGN_OR_RETURN(sdk::PeerTokenResponse response,
                         sdk::RequestPeerToken({.host = endpoint.host,
                                                .port = endpoint.port,
                                                .trust_bundle_pem = *bundle,
                                                .certificate_chain_pem = *chain,
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
};

Status VerifyToken(const VerifyTokenOptions& options) {
  auto token = ReadFile(options.token_file);
  if (!token) return std::unexpected(token.error().WithContext("reading the token"));
  auto signers = ReadFile(options.signer_file);
  if (!signers) return std::unexpected(signers.error().WithContext("--signer"));
  auto peer_pem = ReadFile(options.peer_certificate_file);
  if (!peer_pem) return std::unexpected(peer_pem.error().WithContext("--peer-cert"));
  auto peer = pki::Certificate::FromPem(*peer_pem);
  if (!peer) return std::unexpected(peer.error().WithContext("--peer-cert"));
  SystemClock clock;
  DEVID_ASSIGN_OR_RETURN(auto verifier,
                         sdk::PeerTokenVerifier::Create(
                             {.audience = options.audience,
                              .signer_certificates_pem = *signers,
                              .clock_skew = std::chrono::seconds(options.clock_skew_seconds)},
                             clock));
  auto accepted = verifier->Accept(*token, *peer, options.scope);
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

template <typename Options, typename Run>
void Report(const Options& options, Run run, int& exit_code) {
  if (Status status = run(options); !status) {
    std::cerr << "devid: " << status.error().message() << "\n";
    exit_code = 1;
  }
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
  token->add_option("--cert", token_options->certificate_file, "This device's devid certificate")
      ->required();
  token
      ->add_option("--key", token_options->key_uri,
                   "URI of its key (file:, pkcs11: or tpm2:), which signs the TLS handshake")
      ->required();
  token->add_option("--pkcs11-module", token_options->pkcs11_module,
                    "PKCS #11 library for URIs without module-path");
  token->add_option("--endpoint", token_options->endpoint, "devid's https:// device endpoint")
      ->required();
  token
      ->add_option("--trust-bundle", token_options->trust_bundle_file,
                   "PEM of the CA certificates devid's server certificate chains to")
      ->required();
  token->callback([token_options, &exit_code] { Report(*token_options, RequestToken, exit_code); });

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
  verify
      ->add_option("--peer-cert", verify_options->peer_certificate_file,
                   "PEM of the certificate the peer presented over TLS (proof of possession)")
      ->required();
  verify->add_option("--scope", verify_options->scope, "Scope words the peer must hold");
  verify
      ->add_option("--clock-skew", verify_options->clock_skew_seconds,
                   "Seconds of clock difference to allow for (at most 300)")
      ->check(CLI::Range(0, 300))
      ->capture_default_str();
  verify->callback(
      [verify_options, &exit_code] { Report(*verify_options, VerifyToken, exit_code); });
}

}  // namespace devid::cli
