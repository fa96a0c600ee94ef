#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli/audit_command.h"
#include "cli/ca_commands.h"
#include "cli/device_commands.h"
#include "cli/gateway_command.h"
#include "cli/migrate_command.h"
#include "cli/operator_commands.h"
#include "cli/peer_commands.h"
#include "registry/postgres/postgres_registry.h"
#include "registry/sqlite/sqlite_registry.h"
#include "server/serve.h"

namespace {

// RegistryFactories is the explicit table of store back ends, by URL scheme.
devid::server::RegistryFactories RegistryFactories() {
  devid::server::RegistryFactories factories;
  factories["sqlite"] =
      [](const std::string& location, devid::Clock& clock,
         devid::Random& random) -> devid::Result<std::unique_ptr<devid::registry::Registry>> {
    auto registry = devid::registry::SqliteRegistry::Open(location, clock, random);
    if (!registry) return std::unexpected(registry.error());
    return std::unique_ptr<devid::registry::Registry>(std::move(*registry));
  };
  // libpq takes the whole URL; both of its schemes name the same back end.
  for (std::string scheme : {"postgresql", "postgres"}) {
    factories[scheme] = [scheme](const std::string& location, devid::Clock& clock,
                                 devid::Random& random)
        -> devid::Result<std::unique_ptr<devid::registry::Registry>> {
      auto registry =
          devid::registry::PostgresRegistry::Open(scheme + "://" + location, clock, random);
      if (!registry) return std::unexpected(registry.error());
      return std::unique_ptr<devid::registry::Registry>(std::move(*registry));
    };
  }
  return factories;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("devid"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug

  CLI::App app{"devid: IoT device identity service"};
  app.require_subcommand(1);

  devid::server::ServeOptions serve;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Run the device and service APIs");
  serve_cmd->add_option("--data-dir", serve.data_dir, "State directory (created when empty)")
      ->capture_default_str();
  serve_cmd->add_option("--listen", serve.listen, "HOST:PORT to listen on (port 0 = any free)");
  serve_cmd->add_option("--revocation-listen", serve.revocation_listen,
                        "HOST:PORT of a plain-HTTP listener for CRLs and OCSP only");
  serve_cmd->add_option("--config", serve.config_file, "TOML configuration file")
      ->check(CLI::ExistingFile);
  int exit_code = 0;
  const devid::server::RegistryFactories factories = RegistryFactories();
  serve_cmd->callback([&] { exit_code = devid::server::RunServe(serve, factories); });

  devid::cli::AddOperatorCommands(app, exit_code);
  devid::cli::AddCaCommands(app, exit_code, factories);
  devid::cli::AddMigrateCommand(app, exit_code);
  devid::cli::AddDeviceCommands(app, exit_code);
  devid::cli::AddGatewayCommand(app, exit_code);
  devid::cli::AddPeerCommands(app, exit_code);
  devid::cli::AddAuditCommand(app, exit_code, factories);

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
