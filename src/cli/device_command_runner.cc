#include "cli/device_command_runner.h"

#include <iostream>

namespace devid::cli {

void ReportStatus(const Status& status, int& exit_code) {
  if (!status) {
    std::cerr << "devid: " << status.error().message() << "\n";
    exit_code = 1;
  }
}

CLI::App* KeySubcommand(CLI::App& device) {
  auto existing = device.get_subcommands([](CLI::App* app) { return app->get_name() == "key"; });
  if (!existing.empty()) return existing.front();
  CLI::App* key =
      device.add_subcommand("key", "Keys on this device: in a file, a PKCS #11 token or a TPM");
  key->require_subcommand(1);
  return key;
}

}  // namespace devid::cli
