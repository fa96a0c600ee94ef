#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::pki {

// SasToken is a parsed Azure-style shared access signature:
// "SharedAccessSignature sr=<resource>&sig=<urlenc base64>&se=<unix seconds>[&skn=<key name>]",
// fields in any order.
struct SasToken {
  std::string resource_as_sent;  // sr exactly as it appears in the token (it is what was signed)
  std::string resource;          // sr percent-decoded
  std::vector<uint8_t> signature;
  int64_t expiry = 0;            // se
  std::string key_name;          // skn percent-decoded; "" when absent
  bool has_key_name = false;
};

// ParseSasToken parses an Authorization header value or MQTT password. It fails with
// kUnauthenticated and a message naming the defect (missing prefix, missing or repeated field,
// non-numeric se, undecodable sig) and never echoes the signature.
Result<SasToken> ParseSasToken(std::string_view text);

// SasSignature returns base64(HMAC-SHA256(key, resource + "\n" + expiry)).
std::string SasSignature(std::span<const uint8_t> key, std::string_view resource, int64_t expiry);

// CreateSasToken builds a token over resource exactly as given (encode it first if the consumer
// expects an encoded sr), with sig percent-encoded and skn appended when key_name is non-empty.
std::string CreateSasToken(std::span<const uint8_t> key, std::string_view resource,
                           int64_t expiry, std::string_view key_name);

// VerifySasSignature checks, in constant time, that token's signature is the HMAC under key of its
// resource. Producers sign different encodings of sr (DPS Node signs it raw, the TPM path and the
// C SDK signed it percent-encoded), so it accepts an HMAC over sr as sent, and over the
// encodeURIComponent form of the decoded sr in upper- and lowercase hex. It fails with
// kUnauthenticated.
Status VerifySasSignature(const SasToken& token, std::span<const uint8_t> key);

// SasResourceMatches compares the decoded resource with the expected one, ignoring ASCII case.
bool SasResourceMatches(const SasToken& token, std::string_view expected_resource);

// DeriveSymmetricKey returns base64(HMAC-SHA256(base64decode(group_key), registration_id)): the
// device key of a symmetric-key enrollment group (DPS). Fails with kInvalidArgument when group_key
// is not base64.
Result<std::string> DeriveSymmetricKey(std::string_view group_key_base64,
                                       std::string_view registration_id);

}  // namespace devid::pki
