#include "cli/gateway_command.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <system_error>

namespace devid::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kPluginFile[] = "libdevid_mosquitto.so";

// ExistingFile returns path made absolute, or fails naming what is missing.
Result<std::string> ExistingFile(const fs::path& path, std::string_view what,
                                 std::string_view hint) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec || !fs::is_regular_file(absolute, ec)) {
    return std::unexpected(FailedPrecondition("writing the gateway configuration: " +
                                              std::string(what) + " " + path.string() +
                                              " does not exist" + std::string(hint)));
  }
  return absolute.lexically_normal().string();
}

// DefaultPlugin is the plugin built and shipped beside the devid executable.
fs::path DefaultPlugin() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return kPluginFile;
  return self.parent_path() / kPluginFile;
}

std::string Listener(uint16_t port, const std::string& bind) {
  return "listener " + std::to_string(port) + (bind.empty() ? "" : " " + bind) + "\n";
}

}  // namespace

Result<std::string> GatewayConfig(const GatewayConfigOptions& options) {
  if (options.port == options.x509_port) {
    return std::unexpected(InvalidArgument("--port and --x509-port must differ"));
  }
  constexpr std::string_view kStartServer = " (start `devid serve --data-dir` on it once)";
  fs::path data = options.data_dir;
  DEVID_ASSIGN_OR_RETURN(std::string certfile,
                         ExistingFile(data / "tls" / "server.pem", "the server certificate",
                                      kStartServer));
  DEVID_ASSIGN_OR_RETURN(std::string keyfile,
                         ExistingFile(data / "tls" / "server.key", "the server key", kStartServer));
  DEVID_ASSIGN_OR_RETURN(std::string cafile, ExistingFile(data / "ca" / "trust-bundle.pem",
                                                          "the trust bundle", kStartServer));
  std::string x509_cafile = cafile;
  if (!options.x509_cafile.empty()) {
    DEVID_ASSIGN_OR_RETURN(x509_cafile, ExistingFile(options.x509_cafile, "the CA file", ""));
  }
  DEVID_ASSIGN_OR_RETURN(
      std::string plugin,
      ExistingFile(options.plugin.empty() ? DefaultPlugin() : fs::path(options.plugin),
                   "the plugin", " (give its path with --plugin)"));
  std::string store = options.store;
  if (store.empty()) {
    DEVID_ASSIGN_OR_RETURN(std::string db, ExistingFile(data / "devid.db", "the store",
                                                        kStartServer));
    store = "sqlite://" + db;
  }

  std::ostringstream conf;
  conf << "# mosquitto.conf for the devid gateway plugin (docs/gateway.md)\n"
       << "# the plugin re-checks live sessions on the broker's tick, which needs global settings\n"
       << "per_listener_settings false\n"
       << "allow_anonymous false\n"
       << "persistence false\n\n"
       << "# SAS devices: server-authenticated TLS with devid's server certificate\n"
       << Listener(options.port, options.bind) << "certfile " << certfile << "\n"
       << "keyfile " << keyfile << "\n"
       << "cafile " << cafile << "\n"
       << "tls_version tlsv1.2\n";
  if (options.x509_port != 0) {
    conf << "\n# X.509 devices: mutual TLS, a client certificate is required\n"
         << Listener(options.x509_port, options.bind) << "certfile " << certfile << "\n"
         << "keyfile " << keyfile << "\n"
         << "cafile " << x509_cafile << "\n"
         << "require_certificate true\n"
         << "tls_version tlsv1.2\n";
  }
  conf << "\nplugin " << plugin << "\n"
       << "plugin_opt_store " << store << "\n";
  if (!options.hub.empty()) conf << "plugin_opt_hub " << options.hub << "\n";
  return conf.str();
}

void AddGatewayCommand(CLI::App& app, int& exit_code) {
  CLI::App* gateway = app.add_subcommand("gateway", "The Mosquitto gateway plugin");
  gateway->require_subcommand(1);
  auto options = std::make_shared<GatewayConfigOptions>();
  CLI::App* config =
      gateway->add_subcommand("config", "Print a mosquitto.conf that loads the devid plugin");
  config->add_option("--data-dir", options->data_dir, "devid serve's data directory")
      ->capture_default_str();
  config->add_option("--store", options->store,
                     "Store URL (default: the data directory's SQLite file; or postgresql://...)");
  config->add_option("--plugin", options->plugin,
                     "Path of libdevid_mosquitto.so (default: beside the devid executable)");
  config->add_option("--bind", options->bind, "Address the listeners bind to (default: all)");
  config->add_option("--port", options->port, "SAS listener port")->capture_default_str();
  config->add_option("--x509-port", options->x509_port, "mTLS listener port (0 = none)")
      ->capture_default_str();
  config->add_option("--x509-cafile", options->x509_cafile,
                     "CA file for client certificates (default: the trust bundle)");
  config->add_option("--hub", options->hub, "Admit only devices assigned to this hub");
  config->callback([options, &exit_code] {
    auto conf = GatewayConfig(*options);
    if (!conf) {
      std::cerr << "devid gateway config: " << conf.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << *conf;
  });
}

}  // namespace devid::cli
