#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "base/result.h"

namespace devid::cli {

// GatewayConfigOptions are `devid gateway config`'s flags.
struct GatewayConfigOptions {
  // data_dir is a `devid serve` data directory: its TLS certificate and trust bundle are used.
  std::string data_dir = "data";
  // store is the plugin's store URL; "" = the SQLite file in data_dir.
  std::string store;
  // plugin is the path of libdevid_mosquitto.so; "" = the one beside the devid executable.
  std::string plugin;
  // bind is the address the listeners bind to; "" = every interface.
  std::string bind;
  // port is the SAS listener (server-authenticated TLS); x509_port the mTLS listener that
  // requires a client certificate (0 = none).
  uint16_t port = 8883;
  uint16_t x509_port = 8884;
  // x509_cafile is the CA file the mTLS listener verifies client certificates with; "" = devid's
  // trust bundle (add the roots of third-party device certificates to a copy of it).
  std::string x509_cafile;
  // hub, when set, admits only devices assigned to it (plugin_opt_hub).
  std::string hub;
};

// GatewayConfig returns a mosquitto.conf for the devid plugin: global settings the plugin needs,
// the listeners with the server's TLS files, the plugin and its store. Paths are made absolute.
// Fails with kFailedPrecondition when data_dir has no server certificate or trust bundle yet
// (start `devid serve` on it once) or the plugin file does not exist, and with kInvalidArgument
// when port and x509_port are equal.
Result<std::string> GatewayConfig(const GatewayConfigOptions& options);

// AddGatewayCommand registers `devid gateway config` on app. On failure it prints the error to
// stderr and sets exit_code to 1.
void AddGatewayCommand(CLI::App& app, int& exit_code);

}  // namespace devid::cli
