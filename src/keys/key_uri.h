#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::keys {

// KeyUri names a key in a key store. Two schemes are understood:
//   file:PATH[?passphrase-env=NAME|passphrase-file=PATH]   (RFC 8089 paths, "file:///a" or
//   "file:/a") pkcs11:token=T;object=O[;id=%01...][?pin-source=PATH|pin-value=P&module-path=PATH]
//   (RFC 7512)
// Attribute values are held percent-decoded; `id` may therefore hold arbitrary bytes.
struct KeyUri {
  std::string scheme;  // "file" or "pkcs11"
  std::string path;    // file: the file system path; pkcs11: unused
  // path_attributes are the RFC 7512 §2.3 path attributes (pkcs11 only).
  std::map<std::string, std::string, std::less<>> path_attributes;
  // query_attributes are the query attributes (RFC 7512 §2.3 for pkcs11; passphrase-* for file).
  std::map<std::string, std::string, std::less<>> query_attributes;

  // PathAttribute / QueryAttribute return an attribute's decoded value, or nullopt when absent.
  std::optional<std::string> PathAttribute(std::string_view name) const;
  std::optional<std::string> QueryAttribute(std::string_view name) const;

  // ToString renders the URI with every value percent-encoded where RFC 7512 §2.3 requires it.
  // Secrets (pin-value) are replaced by "REDACTED", so the result is safe for logs and errors.
  std::string ToString() const;
};

// ParseKeyUri parses a key URI. It fails with kInvalidArgument, naming the defect, for an unknown
// scheme, a malformed percent escape, a repeated path attribute (RFC 7512 §2.3), an attribute this
// implementation does not know (other than vendor "x-" attributes), or a file: URI without a path
// or with a host other than empty or "localhost". Error messages never contain pin-value.
Result<KeyUri> ParseKeyUri(std::string_view text);

}  // namespace devid::keys
