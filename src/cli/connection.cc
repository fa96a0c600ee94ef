#include "cli/connection.h"

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace devid::cli {
namespace {

// StringField returns the file's string member name, or "" when absent.
Result<std::string> StringField(const nlohmann::json& json, const char* name,
                                const std::string& path) {
  auto it = json.find(name);
  if (it == json.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return std::unexpected(InvalidArgument(path + ": " + name + " must be a string"));
  }
  return it->get<std::string>();
}

}  // namespace

Result<Connection> ResolveConnection(const ConnectionOptions& options) {
  std::string connection_string = options.connection_string;
  std::string endpoint = options.endpoint;
  std::string trust_bundle_file = options.trust_bundle_file;
  if (connection_string.empty() || endpoint.empty() || trust_bundle_file.empty()) {
    auto text = ReadFile(options.file);
    if (!text) {
      return std::unexpected(
          Error(text.error().code(),
                text.error().message() +
                    " (start `devid serve`, or pass --connection, or --connection-string with "
                    "--endpoint and --trust-bundle)"));
    }
    auto json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) {
      return std::unexpected(InvalidArgument(options.file + ": not a JSON object"));
    }
    if (connection_string.empty()) {
      DEVID_ASSIGN_OR_RETURN(connection_string,
                             StringField(json, "serviceConnectionString", options.file));
    }
    if (endpoint.empty()) {
      DEVID_ASSIGN_OR_RETURN(endpoint, StringField(json, "serviceEndpoint", options.file));
    }
    if (trust_bundle_file.empty()) {
      DEVID_ASSIGN_OR_RETURN(trust_bundle_file, StringField(json, "trustBundle", options.file));
    }
  }
  if (connection_string.empty()) {
    return std::unexpected(InvalidArgument("no service connection string (--connection-string)"));
  }
  if (endpoint.empty()) return std::unexpected(InvalidArgument("no endpoint (--endpoint)"));
  if (trust_bundle_file.empty()) {
    return std::unexpected(InvalidArgument("no trust bundle (--trust-bundle)"));
  }
  Connection out;
  DEVID_ASSIGN_OR_RETURN(out.credentials, ParseServiceConnectionString(connection_string));
  DEVID_ASSIGN_OR_RETURN(out.endpoint, ParseEndpoint(endpoint));
  DEVID_ASSIGN_OR_RETURN(out.trust_bundle_pem, ReadFile(trust_bundle_file));
  return out;
}

}  // namespace devid::cli
