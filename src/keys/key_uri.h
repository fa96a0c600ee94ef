#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::keys {

// KeyUri names a key in a key store. Three schemes are understood:
//   file:PATH[?passphrase-env=NAME|passphrase-file=PATH]   (RFC 8089 paths, "file:///a" or
//   "file:/a") pkcs11:token=T;object=O[;id=%01...][?pin-source=PATH|pin-value=P&module-path=PATH]
//   (RFC 7512)
//   tpm2:handle=0x81000010[?tcti=swtpm:host=127.0.0.1,port=2321]   a key at a persistent handle
//   of the owner hierarchy (0x81000000-0x817fffff, TCG Provisioning Guidance §7.8), in the TPM
//   the tcti reaches (as Tss2_TctiLdr_Initialize takes it; absent: the store's default)
// Attribute values are held percent-decoded; `id` may therefore hold arbitrary bytes.
struct KeyUri {
  std::string scheme;  // "file", "pkcs11" or "tpm2"
  std::string path;    // file: the file system path; pkcs11, tpm2: unused
  // path_attributes are the RFC 7512 §2.3 path attributes (pkcs11), or tpm2's handle.
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
// or with a host other than empty or "localhost", or a tpm2: URI without exactly one handle in
// the owner's persistent range written as 0x and eight hex digits. Error messages never contain
// pin-value.
Result<KeyUri> ParseKeyUri(std::string_view text);

// Tpm2Handle returns the persistent handle of a tpm2: URI that ParseKeyUri accepted.
uint32_t Tpm2Handle(const KeyUri& uri);

}  // namespace devid::keys
