#include "cli/ca_commands.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "ca/profile.h"
#include "ca/recorded_issuance.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"
#include "pki/csr.h"
#include "server/ca_store.h"
#include "server/data_dir.h"
#include "server/serve.h"

namespace devid::cli {
namespace {

// CaOptions holds the flags of every `devid ca` command; one command runs per process.
struct CaOptions {
  std::string data_dir = "data";
  std::string ca_dir;  // [ca] directory of devid serve; "" = <data dir>/ca/authority
  std::string pkcs11_module;
  std::string algorithm = "ecdsa-p256";
  std::string passphrase_env;
  std::string base_url;
  // init
  std::string root_key;
  std::string issuing_key;
  std::string root_name = "devid root CA";
  std::string issuing_name = "devid issuing CA";
  // import
  std::string certificate_file;
  std::string root_file;
  std::string key;
  // rollover
  std::string name = "devid issuing CA";
  // issue
  std::string profile = "device-client";
  std::string csr_file;
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  int days = 0;
  std::string out_file;
  std::string store_url;  // "" = the data dir's SQLite database
};

// StoreOf is the CA the options name: --ca-dir, else the one in --data-dir.
server::CaStore StoreOf(const CaOptions& options) {
  return options.ca_dir.empty() ? server::CaStore(options.data_dir)
                                : server::CaStore::InDirectory(options.ca_dir);
}

// KeyStoresFor is the explicit table of key stores for one command: files (passphrases from the
// process environment) and PKCS #11.
struct CommandKeyStores {
  explicit CommandKeyStores(const CaOptions& options)
      : file([](const std::string& name) -> std::optional<std::string> {
          const char* value = std::getenv(name.c_str());
          if (value == nullptr) return std::nullopt;
          return std::string(value);
        }),
        pkcs11(options.pkcs11_module) {
    table.Add("file", file);
    table.Add("pkcs11", pkcs11);
  }
  keys::FileKeyStore file;
  keys::Pkcs11KeyStore pkcs11;
  keys::KeyStores table;
};

// WithModule adds module-path (RFC 7512 §2.4) to a pkcs11: URI that lacks one, so the URI
// recorded in the CA manifest opens the key without the --pkcs11-module flag.
std::string WithModule(const std::string& uri, const CaOptions& options) {
  if (options.pkcs11_module.empty() || !uri.starts_with("pkcs11:") ||
      uri.find("module-path=") != std::string::npos) {
    return uri;
  }
  keys::KeyUri module;
  module.scheme = "file";
  module.path = options.pkcs11_module;
  std::string encoded = module.ToString().substr(5);  // percent-encoded like a path
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + "module-path=" + encoded;
}

Status Init(const CaOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyAlgorithm algorithm, keys::ParseKeyAlgorithm(options.algorithm));
  DEVID_TRY(server::DataDir::Prepare(options.data_dir));
  CommandKeyStores stores(options);
  SystemClock clock;
  SecureRandom random;
  server::CaStore store = StoreOf(options);
  DEVID_TRY(store.Init({.root_common_name = options.root_name,
                        .issuing_common_name = options.issuing_name,
                        .algorithm = algorithm,
                        .root_key_uri = WithModule(options.root_key, options),
                        .issuing_key_uri = WithModule(options.issuing_key, options),
                        .passphrase_env = options.passphrase_env,
                        .base_url = options.base_url},
                       stores.table, clock, random));
  std::cout << "Created a root and an issuing CA in " << store.directory() << ".\n";
  return Ok();
}

Status Import(const CaOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFile(options.certificate_file));
  std::string roots;
  if (!options.root_file.empty()) {
    DEVID_ASSIGN_OR_RETURN(roots, ReadFile(options.root_file));
  }
  DEVID_TRY(server::DataDir::Prepare(options.data_dir));
  CommandKeyStores stores(options);
  SystemClock clock;
  SecureRandom random;
  server::CaStore store = StoreOf(options);
  DEVID_TRY(
      store.Import(chain, roots, WithModule(options.key, options), stores.table, clock, random));
  std::cout << "Imported the issuing CA into " << store.directory() << "; it issues from now on.\n";
  return Ok();
}

Status Rollover(const CaOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyAlgorithm algorithm, keys::ParseKeyAlgorithm(options.algorithm));
  CommandKeyStores stores(options);
  SystemClock clock;
  SecureRandom random;
  server::CaStore store = StoreOf(options);
  DEVID_TRY(store.Rollover(WithModule(options.key, options), algorithm, options.name,
                           options.passphrase_env, stores.table, clock, random));
  std::cout << "Added a new issuing CA; it issues from now on, the older ones stay trusted.\n";
  return Ok();
}

// RootCrl re-signs the roots' CRLs where their keys are (`devid serve` does it by itself when its
// data dir holds them); copy crls/ to the servers when the root lives elsewhere.
Status RootCrl(const CaOptions& options) {
  CommandKeyStores stores(options);
  SystemClock clock;
  server::CaStore store = StoreOf(options);
  int days = options.days > 0 ? options.days : 365;
  DEVID_TRY(store.PublishRootCrls(stores.table, clock, std::chrono::hours(24 * days),
                                  /*force=*/true));
  std::cout << "Wrote the root CRLs to " << store.directory() << "/crls, valid " << days
            << " days.\n";
  return Ok();
}

Status List(const CaOptions& options) {
  server::CaStore store = StoreOf(options);
  DEVID_ASSIGN_OR_RETURN(std::vector<server::CaSummary> list, store.List());
  for (const server::CaSummary& ca : list) {
    std::cout << std::left << std::setw(8) << ca.role << " " << ca.subject << "\n"
              << "         key id " << ca.key_id << ", expires " << ca.not_after << "\n";
    if (!ca.key_uri.empty()) std::cout << "         key " << ca.key_uri << "\n";
  }
  return Ok();
}

// Issue signs a request offline and records the certificate in the store's inventory (audited as
// the CLI's), so that nothing devid's CA signs escapes discovery and revocation.
Status Issue(const CaOptions& options, const server::RegistryFactories& factories) {
  DEVID_ASSIGN_OR_RETURN(std::string csr_pem, ReadFile(options.csr_file));
  DEVID_ASSIGN_OR_RETURN(pki::Csr csr, pki::Csr::FromPem(csr_pem));
  DEVID_TRY(csr.VerifySignature());
  std::string common_name = csr.SubjectCommonName();
  if (!options.common_name.empty()) {
    if (!common_name.empty() && common_name != options.common_name) {
      return std::unexpected(InvalidArgument("the request's subject CN \"" + common_name +
                                             "\" is not --cn \"" + options.common_name + "\""));
    }
    common_name = options.common_name;
  }
  CommandKeyStores stores(options);
  SystemClock clock;
  SecureRandom random;
  server::CaStore store = StoreOf(options);
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<ca::Authority> authority,
                         store.Load(options.base_url, stores.table, clock, random));
  ca::CertificateRequest request{.common_name = common_name,
                                 .dns_names = options.dns_names,
                                 .ip_addresses = options.ip_addresses,
                                 .public_key = csr.public_key(),
                                 .public_key_info = csr.public_key_info()};
  if (options.days > 0) request.validity = std::chrono::hours(24 * options.days);
  std::string store_url = options.store_url;
  if (store_url.empty()) {
    DEVID_ASSIGN_OR_RETURN(server::DataDir dir, server::DataDir::Prepare(options.data_dir));
    store_url = "sqlite://" + dir.DatabasePath();
  }
  DEVID_ASSIGN_OR_RETURN(auto registry, server::OpenStoreUrl(store_url, factories, clock, random));
  DEVID_ASSIGN_OR_RETURN(
      pki::Certificate certificate,
      ca::IssueRecorded(*authority, *registry, options.profile, request,
                        options.profile == ca::kDeviceClientProfile ? common_name : "",
                        registry::kAuditCertificateIssue, registry::Actor{"cli"}));
  std::string chain = authority->ChainPem(certificate);
  if (options.out_file.empty()) {
    std::cout << chain;
  } else {
    DEVID_TRY(WriteFileAtomically(options.out_file, chain, 0644));
  }
  return Ok();
}

}  // namespace

void AddCaCommands(CLI::App& app, int& exit_code, const server::RegistryFactories& factories) {
  auto options = std::make_shared<CaOptions>();
  CaOptions& o = *options;
  CLI::App* ca = app.add_subcommand("ca", "Certificate authority (offline, on a data dir)");
  ca->require_subcommand(1);

  auto leaf = [&](std::string name, std::string description,
                  std::function<Status(const CaOptions&)> action) {
    CLI::App* cmd = ca->add_subcommand(std::move(name), std::move(description));
    cmd->add_option("--data-dir", o.data_dir, "State directory of devid serve")
        ->capture_default_str();
    cmd->add_option("--ca-dir", o.ca_dir,
                    "The CA's own directory when devid serve names one ([ca] directory)");
    cmd->add_option("--pkcs11-module", o.pkcs11_module,
                    "PKCS #11 module for pkcs11: key URIs without module-path")
        ->envname("DEVID_PKCS11_MODULE");
    cmd->callback([options, action = std::move(action), &exit_code] {
      Status status = action(*options);
      if (!status) {
        std::cout.flush();
        std::cerr << "devid: " << status.error().message() << "\n";
        exit_code = 1;
      }
    });
    return cmd;
  };
  auto algorithm_flag = [&](CLI::App* cmd) {
    cmd->add_option("--algorithm", o.algorithm, "Key algorithm of new CA keys")
        ->check(CLI::IsMember({"ecdsa-p256", "ecdsa-p384", "rsa-3072", "ed25519"}))
        ->capture_default_str();
    cmd->add_option("--passphrase-env", o.passphrase_env,
                    "Environment variable holding the passphrase of new file keys (default: a "
                    "random passphrase in the data dir)");
  };

  CLI::App* init = leaf("init", "Create a root CA and an issuing CA", Init);
  algorithm_flag(init);
  init->add_option("--root-key", o.root_key, "Key URI for the root key (file: or pkcs11:)");
  init->add_option("--issuing-key", o.issuing_key, "Key URI for the issuing CA key");
  init->add_option("--root-name", o.root_name, "Root CA common name")->capture_default_str();
  init->add_option("--issuing-name", o.issuing_name, "Issuing CA common name")
      ->capture_default_str();
  init->add_option("--base-url", o.base_url,
                   "https://HOST:PORT written into certificates' CRL and OCSP pointers");

  CLI::App* import = leaf("import", "Add an existing issuing CA (certificate + key URI)", Import);
  import
      ->add_option("--certificate", o.certificate_file,
                   "PEM: the issuing CA certificate, optionally followed by its root")
      ->required()
      ->check(CLI::ExistingFile);
  import->add_option("--root", o.root_file, "PEM file of root certificates to trust")
      ->check(CLI::ExistingFile);
  import->add_option("--key", o.key, "URI of the issuing CA's key")->required();

  CLI::App* rollover =
      leaf("rollover", "Add a new issuing CA under the root; it issues next", Rollover);
  algorithm_flag(rollover);
  rollover->add_option("--key", o.key, "Key URI for the new key (default: a new file key)");
  rollover->add_option("--name", o.name, "Common name of the new issuing CA")
      ->capture_default_str();

  leaf("list", "List the root and issuing CAs", List);
  leaf("root-crl", "Sign the roots' CRLs again (where the root keys are)", RootCrl)
      ->add_option("--days", o.days, "Validity in days (default 365)")
      ->check(CLI::PositiveNumber);

  CLI::App* issue =
      leaf("issue", "Issue a certificate for a PKCS #10 request and record it in the inventory",
           [&factories](const CaOptions& options) { return Issue(options, factories); });
  issue->add_option("--store", o.store_url,
                    "Store URL to record it in (default: the data dir's SQLite database)");
  issue->add_option("--csr", o.csr_file, "PEM certificate request")
      ->required()
      ->check(CLI::ExistingFile);
  issue->add_option("--profile", o.profile, "Certificate profile")
      ->check(CLI::IsMember({std::string(ca::kDeviceClientProfile), std::string(ca::kServerProfile),
                             std::string(ca::kOcspSignerProfile)}))
      ->capture_default_str();
  issue->add_option("--cn", o.common_name,
                    "Subject CN (device-client: the registration ID); must match the request's");
  issue->add_option("--dns", o.dns_names, "DNS subject alternative name (repeatable)");
  issue->add_option("--ip", o.ip_addresses, "IP subject alternative name (repeatable)");
  issue->add_option("--days", o.days, "Lifetime in days when shorter than the profile's")
      ->check(CLI::PositiveNumber);
  issue->add_option("--base-url", o.base_url, "Override the recorded base URL");
  issue->add_option("--out", o.out_file, "Write the chain here instead of stdout");
}

}  // namespace devid::cli
