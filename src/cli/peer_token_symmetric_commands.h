#pragma once

// The symmetric (Kerberos-shaped) peer-token flow on the command line (docs/tokens.md): device A
// gets a token and a session key with its SAS key, B issues a challenge, A proves with the
// session key, B verifies offline with its own SAS key.

#include <CLI/CLI.hpp>
#include <expected>
#include <string>
#include <string_view>

#include "base/result.h"
#include "cli/connection_string.h"
#include "devid/peer_token.h"

namespace devid::cli {

// SymmetricTokenOptions are `devid peer token`'s flags for a SAS-authenticated device.
struct SymmetricTokenOptions {
  std::string symmetric_key_file;  // base64 SAS key of this device
  std::string id_scope;
  std::string registration_id;
  std::string session_key_out;  // written with mode 0600; must not exist
};

// RequestSymmetricToken asks the token authority with the device's SAS token, writes the session
// key to options.session_key_out and prints the token.
Status RequestSymmetricToken(const SymmetricTokenOptions& options, const Endpoint& endpoint,
                             const std::string& trust_bundle_pem, const std::string& to,
                             const std::string& scope);

// SymmetricPresentation names the files B verifies a symmetric token with.
struct SymmetricPresentation {
  std::string symmetric_key_file;  // B's own base64 SAS key
  std::string challenge_file;      // the challenge B issued (devid peer challenge)
  std::string proof_file;          // A's answer (devid peer prove)
};

// AcceptSymmetric reads the presentation's files and has verifier accept token with them; the
// outer error is a file that cannot be read, the inner one the verifier's refusal.
Result<std::expected<sdk::VerifiedPeerToken, sdk::PeerTokenError>> AcceptSymmetric(
    sdk::PeerTokenVerifier& verifier, std::string_view token,
    const SymmetricPresentation& presentation, std::string_view scope);

// AddPeerChallengeCommands adds `devid peer challenge` and `devid peer prove`.
void AddPeerChallengeCommands(CLI::App& peer, int& exit_code);

}  // namespace devid::cli
