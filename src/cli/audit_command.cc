#include "cli/audit_command.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "registry/audit_chain.h"

namespace devid::cli {
namespace {

struct AuditOptions {
  std::string data_dir = "data";
  std::string store_url;  // "" = the data dir's SQLite database
};

Status Verify(const AuditOptions& options, const server::RegistryFactories& factories) {
  std::string store_url = options.store_url;
  if (store_url.empty()) {
    // Opening a SQLite path creates the file: refuse a data dir without a store instead of
    // verifying a fresh, empty log.
    std::string path = options.data_dir + "/devid.db";
    if (!std::filesystem::exists(path)) {
      return std::unexpected(NotFound("verifying the audit log: there is no store at " + path +
                                      "; pass --data-dir or --store"));
    }
    store_url = "sqlite://" + path;
  }
  SystemClock clock;
  SecureRandom random;
  DEVID_ASSIGN_OR_RETURN(auto registry, server::OpenStoreUrl(store_url, factories, clock, random));
  DEVID_ASSIGN_OR_RETURN(registry::AuditVerification result,
                         registry::VerifyAuditChain(*registry));
  if (result.broken_at != 0) {
    return std::unexpected(FailedPrecondition("the audit log is broken at sequence " +
                                              std::to_string(result.broken_at) + ": " +
                                              result.reason));
  }
  std::cout << "audit log verified: " << result.records << " records";
  if (result.unchained > 0) {
    std::cout << " (" << result.unchained << " from before the chain, not covered)";
  }
  std::cout << "\nhead: sequence " << result.head_sequence << " hash "
            << (result.head_hash.empty() ? "-" : result.head_hash) << "\n";
  return Ok();
}

}  // namespace

void AddAuditCommand(CLI::App& app, int& exit_code, const server::RegistryFactories& factories) {
  auto options = std::make_shared<AuditOptions>();
  CLI::App* audit = app.add_subcommand("audit", "The audit log");
  audit->require_subcommand(1);
  CLI::App* verify = audit->add_subcommand("verify", "Check the audit log's hash chain");
  verify->add_option("--data-dir", options->data_dir, "State directory of devid serve")
      ->capture_default_str();
  verify->add_option("--store", options->store_url,
                     "Store URL (default: the data dir's SQLite database)");
  verify->callback([options, &factories, &exit_code] {
    Status status = Verify(*options, factories);
    if (!status) {
      std::cout.flush();
      std::cerr << "devid: " << status.error().message() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace devid::cli
