#pragma once

#include <string>

#include "base/result.h"

namespace devid::server {

// DataDir is the server's state on disk: the CA (`ca/`), the TLS identity (`tls/`), the SQLite
// database and connection.json. Private keys are written mode 0600, the directory 0700.
class DataDir {
 public:
  // Prepare creates dir if needed and returns it; nothing else is written yet.
  static Result<DataDir> Prepare(const std::string& dir);

  const std::string& path() const { return path_; }
  // DatabasePath is <dir>/devid.db.
  std::string DatabasePath() const { return path_ + "/devid.db"; }

  // WriteConnectionFile writes <dir>/connection.json (mode 0600: it holds the service key).
  Status WriteConnectionFile(const std::string& json_text) const;

 private:
  explicit DataDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace devid::server
