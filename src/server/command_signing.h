#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/authority.h"
#include "ca/command_signer.h"
#include "keys/key_store.h"
#include "registry/registry.h"

namespace devid::server {

// SignerFiles is where a data directory keeps one of the server's JWS signers, the command
// signer (docs/commands.md) or the token signer (docs/tokens.md), and what that signer is.
struct SignerFiles {
  // key_uri is the configured [ca] command_signer_key_uri or token_signer_key_uri; "" = the
  // encrypted file key <ca directory>/<name>/signer.key whose passphrase is in passphrase beside
  // it (0600).
  std::string key_uri;
  std::string ca_directory;             // <data>/ca/authority
  std::string certificate_file;         // <data>/<name>.pem, which devices pin
  std::string name = "command-signer";  // the certificate profile and the key's directory
  std::string common_name = "devid command signer";
  std::string typ = std::string(ca::kCommandEnvelopeType);  // of every JWS it signs
};

// TokenSignerFiles returns the peer-token signer's SignerFiles (docs/tokens.md).
SignerFiles TokenSignerFiles(std::string key_uri, std::string ca_directory,
                             std::string certificate_file);

// LoadOrIssueSigner opens the signing key of files (creating an ECDSA P-256 one when there is
// none yet) and returns it with its certificate: the one in files.certificate_file when it is
// for this key, chains to authority and is not due for renewal (JwsSigner::NeedsRenewal),
// else a new one under the profile files.name, recorded in the registry's inventory and
// written there (0644) for devices to pin. Fails as the key store, the authority and
// Registry::RecordCertificate do.
Result<std::unique_ptr<ca::JwsSigner>> LoadOrIssueSigner(const SignerFiles& files,
                                                         const ca::Authority& authority,
                                                         const keys::KeyStores& key_stores,
                                                         registry::Registry& registry,
                                                         const Clock& clock, Random& random);

// RenewingSigner keeps one of the server's JWS signers current while it runs: Current returns the
// signer, after replacing it through LoadOrIssueSigner once it is due. A
// failed renewal keeps signing with the old certificate while that is still valid (and logs),
// trying again kRenewalRetry later; after that Current fails. Thread-safe. The references must
// outlive it.
class RenewingSigner {
 public:
  RenewingSigner(SignerFiles files, std::unique_ptr<ca::JwsSigner> signer,
                 const ca::Authority& authority, const keys::KeyStores& key_stores,
                 registry::Registry& registry, const Clock& clock, Random& random);

  static constexpr std::chrono::seconds kRenewalRetry{60};

  Result<std::shared_ptr<const ca::JwsSigner>> Current();

  // Source adapts Current for the APIs that sign (api::CommandApi, api::TokenApi).
  ca::JwsSignerSource Source() {
    return [this] { return Current(); };
  }

 private:
  SignerFiles files_;
  const ca::Authority& authority_;
  const keys::KeyStores& key_stores_;
  registry::Registry& registry_;
  const Clock& clock_;
  Random& random_;
  std::mutex mutex_;  // guards signer_ and serializes renewals
  std::shared_ptr<const ca::JwsSigner> signer_;
  std::chrono::system_clock::time_point retry_at_;
};

}  // namespace devid::server
