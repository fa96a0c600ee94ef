#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddPeerCommands registers `devid peer` (docs/tokens.md):
//   token          ask devid's token authority for a token to a peer, over mutual TLS with this
//                  device's certificate; prints the token
//   verify-token   check a token offline as the peer would (the SDK's PeerTokenVerifier); prints
//                  its claims only when accepted
//   refresh, serve, connect   devices authenticating each other offline (peer_session_commands.h)
//   challenge, prove   the symmetric-token proof of possession (peer_token_symmetric_commands.h)
// Failures print the reason to stderr and set exit_code to 1.
void AddPeerCommands(CLI::App& app, int& exit_code);

}  // namespace devid::cli
