#include "pki/sas_token.h"

#include <strings.h>

#include <charconv>

#include "base/url.h"
#include "ossl/base64.h"
#include "ossl/mac.h"

namespace devid::pki {
namespace {

constexpr std::string_view kPrefix = "SharedAccessSignature ";

bool Matches(std::span<const uint8_t> key, std::string_view resource, int64_t expiry,
             std::span<const uint8_t> signature) {
  std::string to_sign(resource);
  to_sign += '\n';
  to_sign += std::to_string(expiry);
  ossl::Sha256Digest mac = ossl::HmacSha256(key, to_sign);
  return ossl::ConstantTimeEquals(mac, signature);
}

}  // namespace

Result<SasToken> ParseSasToken(std::string_view text) {
  if (!text.starts_with(kPrefix)) {
    return std::unexpected(
        Unauthenticated("SAS token does not start with 'SharedAccessSignature '"));
  }
  std::string_view fields = text.substr(kPrefix.size());
  if (fields.empty()) return std::unexpected(Unauthenticated("SAS token has no fields"));
  SasToken token;
  bool has_sr = false, has_sig = false, has_se = false;
  while (!fields.empty()) {
    size_t amp = fields.find('&');
    std::string_view field = fields.substr(0, amp);
    fields = amp == std::string_view::npos ? std::string_view() : fields.substr(amp + 1);
    size_t eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return std::unexpected(Unauthenticated("SAS token field is not name=value"));
    }
    std::string_view name = field.substr(0, eq);
    std::string_view value = field.substr(eq + 1);
    if (value.find_first_of(" \t\r\n") != std::string_view::npos) {
      return std::unexpected(Unauthenticated("SAS token contains whitespace"));
    }
    if (name == "sr") {
      if (has_sr) return std::unexpected(Unauthenticated("SAS token repeats sr"));
      has_sr = true;
      token.resource_as_sent = std::string(value);
      auto decoded = PercentDecode(value);
      if (!decoded) return std::unexpected(Unauthenticated("SAS token sr is not URL-encoded"));
      token.resource = std::move(*decoded);
    } else if (name == "sig") {
      if (has_sig) return std::unexpected(Unauthenticated("SAS token repeats sig"));
      has_sig = true;
      auto decoded = PercentDecode(value);
      if (!decoded) return std::unexpected(Unauthenticated("SAS token sig is not URL-encoded"));
      auto bytes = ossl::Base64Decode(*decoded);
      if (!bytes) return std::unexpected(Unauthenticated("SAS token sig is not base64"));
      token.signature = std::move(*bytes);
    } else if (name == "se") {
      if (has_se) return std::unexpected(Unauthenticated("SAS token repeats se"));
      has_se = true;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), token.expiry);
      if (ec != std::errc() || end != value.data() + value.size() || token.expiry < 0) {
        return std::unexpected(Unauthenticated("SAS token se is not a Unix time in seconds"));
      }
    } else if (name == "skn") {
      if (token.has_key_name) return std::unexpected(Unauthenticated("SAS token repeats skn"));
      token.has_key_name = true;
      auto decoded = PercentDecode(value);
      if (!decoded) return std::unexpected(Unauthenticated("SAS token skn is not URL-encoded"));
      token.key_name = std::move(*decoded);
    }
    // Unknown fields are ignored, as the Azure services do.
  }
  if (!has_sr) return std::unexpected(Unauthenticated("SAS token has no sr"));
  if (!has_sig) return std::unexpected(Unauthenticated("SAS token has no sig"));
  if (!has_se) return std::unexpected(Unauthenticated("SAS token has no se"));
  return token;
}

std::string SasSignature(std::span<const uint8_t> key, std::string_view resource, int64_t expiry) {
  std::string to_sign(resource);
  to_sign += '\n';
  to_sign += std::to_string(expiry);
  ossl::Sha256Digest mac = ossl::HmacSha256(key, to_sign);
  return ossl::Base64Encode(mac);
}

std::string CreateSasToken(std::span<const uint8_t> key, std::string_view resource, int64_t expiry,
                           std::string_view key_name) {
  std::string token(kPrefix);
  token += "sr=";
  token += resource;
  token += "&sig=";
  token += PercentEncodeComponent(SasSignature(key, resource, expiry), /*strict=*/true);
  if (!key_name.empty()) {
    token += "&skn=";
    token += PercentEncodeComponent(key_name, /*strict=*/true);
  }
  token += "&se=";
  token += std::to_string(expiry);
  return token;
}

Status VerifySasSignature(const SasToken& token, std::span<const uint8_t> key) {
  if (token.signature.size() == ossl::Sha256Digest().size()) {
    // Signers sign sr as they send it, or percent-encoded with upper- or lowercase hex. The form
    // sent goes first, so the common case costs one HMAC; which form matched is no secret (the
    // token is the sender's own), and each MAC comparison is constant-time.
    if (Matches(key, token.resource_as_sent, token.expiry, token.signature)) return Ok();
    std::string upper = PercentEncodeComponent(token.resource);
    if (upper != token.resource_as_sent && Matches(key, upper, token.expiry, token.signature)) {
      return Ok();
    }
    std::string lower = PercentEncodeComponent(token.resource, false, /*lowercase_hex=*/true);
    if (lower != token.resource_as_sent && lower != upper &&
        Matches(key, lower, token.expiry, token.signature)) {
      return Ok();
    }
  }
  return std::unexpected(Unauthenticated("SAS token signature does not match the key"));
}

bool SasResourceMatches(const SasToken& token, std::string_view expected_resource) {
  return token.resource.size() == expected_resource.size() &&
         strncasecmp(token.resource.data(), expected_resource.data(), expected_resource.size()) ==
             0;
}

Result<std::string> DeriveSymmetricKey(std::string_view group_key_base64,
                                       std::string_view registration_id) {
  auto key = ossl::Base64Decode(group_key_base64);
  if (!key) return std::unexpected(InvalidArgument("the group key is not base64"));
  ossl::Sha256Digest mac = ossl::HmacSha256(*key, registration_id);
  return ossl::Base64Encode(mac);
}

}  // namespace devid::pki
