#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "api/command_api.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/authority.h"
#include "ca/command_signer.h"
#include "keys/key_store.h"
#include "registry/registry.h"

namespace devid::server {

// CommandSignerFiles is where a data directory keeps the command signer (docs/commands.md).
struct CommandSignerFiles {
  // key_uri is the configured [ca] command_signer_key_uri; "" = the encrypted file key
  // <ca directory>/command-signer/signer.key whose passphrase is in passphrase beside it (0600).
  std::string key_uri;
  std::string ca_directory;      // <data>/ca/authority
  std::string certificate_file;  // <data>/command-signer.pem, which devices pin
};

// LoadOrIssueCommandSigner opens the command signing key (creating an ECDSA P-256 one when there
// is none yet) and returns it with its certificate: the one in files.certificate_file when it is
// for this key, chains to authority and is not due for renewal (CommandSigner::NeedsRenewal),
// else a new one under the command-signer profile, recorded in the registry's inventory and
// written there (0644) for devices to pin. Fails as the key store, the authority and
// Registry::RecordCertificate do.
Result<std::unique_ptr<ca::CommandSigner>> LoadOrIssueCommandSigner(
    const CommandSignerFiles& files, const ca::Authority& authority,
    const keys::KeyStores& key_stores, registry::Registry& registry, const Clock& clock,
    Random& random);

// RenewingCommandSigner keeps the server's command signer current while it runs: Current
// returns the signer, after replacing it through LoadOrIssueCommandSigner once it is due. A
// failed renewal keeps signing with the old certificate while that is still valid (and logs),
// trying again kRenewalRetry later; after that Current fails. Thread-safe. The references must
// outlive it.
class RenewingCommandSigner {
 public:
  RenewingCommandSigner(CommandSignerFiles files, std::unique_ptr<ca::CommandSigner> signer,
                        const ca::Authority& authority, const keys::KeyStores& key_stores,
                        registry::Registry& registry, const Clock& clock, Random& random);

  static constexpr std::chrono::seconds kRenewalRetry{60};

  Result<std::shared_ptr<const ca::CommandSigner>> Current();

  // Source adapts Current for api::CommandApi.
  api::CommandSignerSource Source() {
    return [this] { return Current(); };
  }

 private:
  CommandSignerFiles files_;
  const ca::Authority& authority_;
  const keys::KeyStores& key_stores_;
  registry::Registry& registry_;
  const Clock& clock_;
  Random& random_;
  std::mutex mutex_;  // guards signer_ and serializes renewals
  std::shared_ptr<const ca::CommandSigner> signer_;
  std::chrono::system_clock::time_point retry_at_;
};

}  // namespace devid::server
