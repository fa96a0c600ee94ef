#pragma once

#include <string>

#include "base/result.h"
#include "cli/connection_string.h"

namespace devid::cli {

// ConnectionOptions are the command-line flags that say which service to talk to.
struct ConnectionOptions {
  // file is a connection.json as `devid serve` writes it (serviceEndpoint,
  // serviceConnectionString, trustBundle). It is read only when a flag below is missing.
  std::string file = "data/connection.json";
  std::string connection_string;  // overrides the file's serviceConnectionString
  std::string endpoint;           // overrides the file's serviceEndpoint
  std::string trust_bundle_file;  // overrides the file's trustBundle
};

// Connection is everything needed to call the service API.
struct Connection {
  Endpoint endpoint;
  ServiceCredentials credentials;
  std::string trust_bundle_pem;
};

// ResolveConnection combines the flags with the connection file and reads the trust bundle. It
// fails with kInvalidArgument (malformed file, string or endpoint) or kNotFound (unreadable file),
// naming the file or flag.
Result<Connection> ResolveConnection(const ConnectionOptions& options);

}  // namespace devid::cli
