#pragma once

#include <CLI/CLI.hpp>

namespace devid::cli {

// AddPeerSessionCommands registers, under `devid peer`, two devices authenticating each other
// directly by mutual TLS with no server involved (docs/peers.md):
//   refresh   fetch devid's CA certificates and CRLs into a trust directory
//   serve     accept peers, print who connected and whether it was accepted, answer a line
//   connect   connect to a serving peer, print who it is and its answer
// Failures print the reason to stderr and set exit_code to 1.
void AddPeerSessionCommands(CLI::App& peer, int& exit_code);

}  // namespace devid::cli
