#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/authority.h"
#include "keys/key_store.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"

namespace devid::server {

// CaInitOptions shapes `devid ca init`.
struct CaInitOptions {
  std::string root_common_name = "devid root CA";
  std::string issuing_common_name = "devid issuing CA";
  keys::KeyAlgorithm algorithm = keys::KeyAlgorithm::kEcdsaP256;
  // root_key_uri / issuing_key_uri name where the CA keys are created ("file:..." or
  // "pkcs11:..."). "" = an encrypted file under <data>/ca/authority/keys/ whose passphrase is a
  // random one in <data>/ca/authority/keys/passphrase (mode 0600), or the variable named by
  // passphrase_env when set.
  std::string root_key_uri;
  std::string issuing_key_uri;
  std::string passphrase_env;
  // base_url is recorded and written into issued certificates' CRL and OCSP pointers.
  std::string base_url;
};

// CaSummary describes one CA certificate of the store, for the CLI.
struct CaSummary {
  std::string role;  // "root" or "issuing"
  std::string subject;
  std::string key_id;  // subjectKeyIdentifier, hex
  std::string not_after;
  std::string key_uri;  // "" for a root whose key is not held
};

// CaStore is the certificate authority's state in a data directory: <data>/ca/authority/
// authority.json lists the roots and issuing CAs (oldest first) with their key URIs; certificates
// are PEM files beside it; file keys live in keys/ (mode 0600, directories 0700). The development
// PKI that `devid serve` makes for its TLS certificate (<data>/ca/root.pem) is separate. Not safe
// for concurrent writers: the CLI is its only writer.
class CaStore {
 public:
  // CaStore addresses the CA of data_dir (<data>/ca/authority); nothing is read or written until
  // a call.
  explicit CaStore(std::string data_dir);

  // InDirectory addresses a CA kept in directory instead ([ca] directory: one CA directory that
  // several nodes share, e.g. distributed by configuration management or a read-only mount).
  static CaStore InDirectory(const std::string& directory);

  // Exists tells whether a CA has been initialized or imported.
  bool Exists() const;

  // Init creates a root (profile root-ca) and one issuing CA (intermediate-ca) signed by it.
  // Fails with kAlreadyExists when the store exists, and as the key stores do.
  Status Init(const CaInitOptions& options, const keys::KeyStores& key_stores, const Clock& clock,
              Random& random);

  // Import adds an existing issuing CA: chain_pem holds its certificate first, optionally followed
  // by intermediates and its root; root_pem (may be empty) adds trust anchors. key_uri must open
  // the key of the first certificate. The issuing CA must chain to a root in the store or in the
  // input. Fails with kInvalidArgument when it does not, or its key does not match.
  Status Import(std::string_view chain_pem, std::string_view root_pem, const std::string& key_uri,
                const keys::KeyStores& key_stores, const Clock& clock, Random& random);

  // Rollover makes a new issuing CA signed by the newest root whose key the store holds; it
  // becomes the one that issues, and the older ones stay trusted. key_uri "" = a new file key as in
  // Init. Fails with kFailedPrecondition when no root key is held (an imported CA).
  Status Rollover(const std::string& key_uri, keys::KeyAlgorithm algorithm,
                  const std::string& common_name, const std::string& passphrase_env,
                  const keys::KeyStores& key_stores, const Clock& clock, Random& random);

  // Load opens every issuing CA's key and returns the Authority. base_url "" = the recorded one.
  // Fails with kNotFound when the store does not exist.
  Result<std::unique_ptr<ca::Authority>> Load(const std::string& base_url,
                                              const keys::KeyStores& key_stores, const Clock& clock,
                                              Random& random) const;

  // PublishRootCrls signs, for every root whose key the store holds, an empty CRL valid for
  // validity and writes it to crls/<root key ID>.crl, unless the CRL there still has more than
  // half of validity left (force: always). Issuing CAs are replaced by rollover, never revoked,
  // so a root's CRL has no entries; it exists so that relying parties that check CRLs for the
  // whole chain (openssl verify -crl_check_all, devices authenticating peers offline) find one at
  // the issuing CA's CRL distribution point. Roots whose key is elsewhere are skipped.
  Status PublishRootCrls(const keys::KeyStores& key_stores, const Clock& clock,
                         std::chrono::seconds validity, bool force) const;

  // RootCrls returns the published root CRLs as (root key ID, DER).
  Result<std::vector<std::pair<std::string, std::string>>> RootCrls() const;

  // List describes the stored CA certificates, roots first.
  Result<std::vector<CaSummary>> List() const;

  // directory is <data>/ca/authority, or the one given to InDirectory.
  const std::string& directory() const { return dir_; }

 private:
  CaStore() = default;
  std::string dir_;
};

// ServerAuthority is the CA as `devid serve` runs it: the Authority and the key stores its keys
// live in (declared first, so they outlive the keys).
struct ServerAuthority {
  explicit ServerAuthority(keys::FileKeyStore::Getenv getenv)
      : file_keys(std::move(getenv)), pkcs11_keys("") {
    key_stores.Add("file", file_keys);
    key_stores.Add("pkcs11", pkcs11_keys);
  }
  keys::FileKeyStore file_keys;
  keys::Pkcs11KeyStore pkcs11_keys;  // URIs carry module-path (devid ca records it)
  keys::KeyStores key_stores;
  std::unique_ptr<ca::Authority> authority;
};

// OpenServerAuthority loads the CA from ca_directory (a CaStore's directory). A directory without
// one gets one first, made as `devid ca init` makes it with init (so a fresh `devid serve` is a
// working CA at once). base_url "" = the recorded one. getenv resolves passphrase-env. Fails as
// CaStore::Init and Load (a missing token, a wrong passphrase) so the server does not start
// half-armed.
Result<std::unique_ptr<ServerAuthority>> OpenServerAuthority(const std::string& ca_directory,
                                                             const CaInitOptions& init,
                                                             const std::string& base_url,
                                                             keys::FileKeyStore::Getenv getenv,
                                                             const Clock& clock, Random& random);

}  // namespace devid::server
