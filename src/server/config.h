#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "ca/token_policy.h"

namespace devid::server {

// ServerSection is [server]: where and how the HTTPS listener runs.
struct ServerSection {
  std::string listen = "127.0.0.1:8443";
  std::string host_name = "localhost";  // the name clients dial; in connection strings and service sr
  int io_threads = 0;                   // 0 = one per core
  int handler_threads = 32;
  int64_t body_limit = 96 * 1024;       // DPS's published message limit
  int request_timeout_seconds = 30;
  int idle_timeout_seconds = 60;
  int shutdown_grace_seconds = 10;
  // request_client_certificate asks TLS clients for a certificate (never requires one), so
  // devices can authenticate to EST with their devid certificate.
  bool request_client_certificate = true;
  // revocation_listen is "host:port" of a plain-HTTP listener serving only CRLs, OCSP and the CA
  // certificates (RFC 5280 §4.2.1.13, RFC 6960 Appendix A); "" = none. When set, issued
  // certificates point there (unless ca.base_url says otherwise).
  std::string revocation_listen;
};

// DeviceSection is [device]: the DPS-compatible device API.
struct DeviceSection {
  std::string id_scope;  // "" = generated on first start and kept in the store
  std::vector<std::string> hubs = {"localhost"};
  int retry_after_seconds = 1;
  // TPM attestation: how long a challenge stays answerable; whether every TPM enrollment must
  // present an EK certificate; the PEM bundle of TPM manufacturer CAs that validate them.
  int tpm_challenge_ttl_seconds = 300;
  bool tpm_require_ek_certificate = false;
  std::string tpm_ek_roots_file;  // "" = none: EK certificates cannot be validated
};

// StoreSection is [store]: the registry back end.
struct StoreSection {
  std::string url;  // "" = sqlite://<data dir>/devid.db
  // settings_refresh_seconds is how often a node re-reads the ID scope and the service access
  // policies from the store, so a change reaches every node within this bound (docs/scale-out.md).
  int settings_refresh_seconds = 5;
};

// TlsSection is [tls]: the server's identity; empty = the development PKI in the data dir.
struct TlsSection {
  std::string certificate_file;  // PEM chain, leaf first
  std::string key_file;          // PEM private key
  std::string trust_bundle_file; // PEM clients should trust
};

// CaSection is [ca]: the certificate authority `devid serve` runs. On a data dir without a CA the
// server creates one on first start (a root and an issuing CA, as `devid ca init`); the key
// settings apply to that creation only.
struct CaSection {
  // base_url prefixes the CRL, OCSP and CA-issuer URLs written into issued certificates; ""
  // = http://<server.host_name>:<revocation_listen port> when that is set, else
  // https://<server.host_name>:<listen port> (none when the port is ephemeral).
  std::string base_url;
  std::string key_algorithm = "ecdsa-p256";  // ecdsa-p256 | ecdsa-p384 | rsa-3072 | ed25519
  std::string root_key_uri;     // "" = an encrypted file key in the data dir
  std::string issuing_key_uri;  // "" = an encrypted file key in the data dir
  std::string passphrase_env;   // variable holding the file keys' passphrase; "" = a file beside them
  // directory holds the CA (certificates, authority.json, file keys, OCSP signers); nodes that
  // share a store share it (docs/scale-out.md). "" = <data dir>/ca/authority.
  std::string directory;
  // command_signer_key_uri is the key that signs device commands (docs/commands.md); nodes
  // sharing a store should share it (pkcs11:...). "" = an encrypted file key in the data dir.
  std::string command_signer_key_uri;
  // token_signer_key_uri is the key that signs peer tokens (docs/tokens.md), shared by nodes as
  // the command signer's is. "" = an encrypted file key in the data dir.
  std::string token_signer_key_uri;
};

// X509Section is [x509]: revocation checking for third-party CAs' device certificates
// (attestation::CrlCache). devid's own CA is checked in its inventory, not here.
struct X509Section {
  std::vector<std::string> crl_files;  // PEM or DER CRLs, re-read when they change
  bool fetch_crls = true;              // fetch the certificates' http:// CRL distribution points
  std::string crl_unavailable = "reject";  // no current CRL to be had: "reject" | "accept"
  int crl_request_wait_ms = 2000;          // longest a request waits for a first fetch
  int crl_fetch_timeout_ms = 5000;
  int crl_refresh_before_seconds = 300;    // refetch this long before nextUpdate
  int crl_max_age_seconds = 3600;          // and at least this often
  int crl_retry_seconds = 30;              // after a failed fetch
  int crl_poll_ms = 1000;                  // how often files are checked for changes
};

// TokensSection is [tokens]: the token authority (docs/tokens.md). The policy is validated at
// load (ca::ValidateTokenPolicy); without rules every request is denied.
struct TokensSection {
  int ttl_seconds = 300;  // how long an issued token is valid
  ca::TokenPolicy policy;  // services = [...], [[tokens.rule]] tables
};

// Config is the whole `devid serve` configuration, parsed once from TOML.
struct Config {
  ServerSection server;
  DeviceSection device;
  StoreSection store;
  TlsSection tls;
  CaSection ca;
  X509Section x509;
  TokensSection tokens;
};

// ParseConfig parses TOML text. Unknown keys and wrong types fail with kInvalidArgument naming
// the key ("server.handler_threads: must be an integer from 1 to 1024").
Result<Config> ParseConfig(std::string_view toml_text);

// LoadConfigFile reads and parses a TOML file.
Result<Config> LoadConfigFile(const std::string& path);

// ListenAddress is a parsed "host:port".
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

// ParseListen parses "host:port", "[v6]:port" or ":port" (all interfaces).
Result<ListenAddress> ParseListen(std::string_view text);

}  // namespace devid::server
