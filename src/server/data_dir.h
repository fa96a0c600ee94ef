#pragma once

#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "base/result.h"
#include "ca/development_pki.h"
#include "server/config.h"

namespace devid::server {

// DataDir is the server's state on disk: the development PKI (`ca/`), the TLS identity (`tls/`),
// the SQLite database and connection.json. Private keys are written mode 0600, the directory 0700.
class DataDir {
 public:
  // Prepare creates dir if needed and returns it; nothing else is written yet.
  static Result<DataDir> Prepare(const std::string& dir);

  const std::string& path() const { return path_; }
  // DatabasePath is <dir>/devid.db.
  std::string DatabasePath() const { return path_ + "/devid.db"; }

  // LoadOrCreateTls returns the TLS identity and the trust bundle path for clients: from the
  // configured files when given, else the development PKI in the data dir, created on first use
  // (an ECDSA P-256 root and a server certificate for host_name, localhost and 127.0.0.1) and
  // reused afterwards.
  Result<ca::TlsIdentity> LoadOrCreateTls(const Config& config, Clock& clock, Random& random,
                                          std::string& trust_bundle_path);

  // WriteConnectionFile writes <dir>/connection.json (mode 0600: it holds the service key).
  Status WriteConnectionFile(const std::string& json_text) const;

 private:
  explicit DataDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace devid::server
