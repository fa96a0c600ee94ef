#include "keys/key_uri.h"

#include <array>
#include <vector>

namespace devid::keys {
namespace {

// RFC 7512 §2.3 path and query attribute names.
constexpr std::array<std::string_view, 13> kPkcs11PathAttributes = {"id",
                                                                    "library-description",
                                                                    "library-manufacturer",
                                                                    "library-version",
                                                                    "manufacturer",
                                                                    "model",
                                                                    "object",
                                                                    "serial",
                                                                    "slot-description",
                                                                    "slot-id",
                                                                    "slot-manufacturer",
                                                                    "token",
                                                                    "type"};
constexpr std::array<std::string_view, 4> kPkcs11QueryAttributes = {"module-name", "module-path",
                                                                    "pin-source", "pin-value"};
constexpr std::array<std::string_view, 2> kFileQueryAttributes = {"passphrase-env",
                                                                  "passphrase-file"};
constexpr std::array<std::string_view, 1> kTpm2PathAttributes = {"handle"};
constexpr std::array<std::string_view, 1> kTpm2QueryAttributes = {"tcti"};
// The owner hierarchy's persistent handles (TPM 2.0 Part 2 §7.2; TCG Provisioning Guidance §7.8).
constexpr uint32_t kTpm2OwnerPersistentFirst = 0x81000000;
constexpr uint32_t kTpm2OwnerPersistentLast = 0x817fffff;

template <size_t N>
bool Known(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return name.starts_with("x-");  // RFC 7512 §2.3: vendor-specific attributes
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return std::unexpected(
          InvalidArgument("key URI: bad percent escape in " + std::string(what)));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// PercentEncode escapes every byte outside RFC 3986 unreserved characters (and '/' for paths, and
// the characters in keep), which is always a valid RFC 7512 §2.3 pk11-pchar / pk11-qchar encoding.
std::string PercentEncode(std::string_view value, bool keep_slash, std::string_view keep = {}) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/') ||
                      keep.find(static_cast<char>(c)) != std::string_view::npos;
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    }
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

template <size_t N>
Status ParseAttributes(std::string_view text, char sep,
                       const std::array<std::string_view, N>& known, bool unique,
                       std::map<std::string, std::string, std::less<>>& out) {
  for (std::string_view part : Split(text, sep)) {
    size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return std::unexpected(InvalidArgument(
          "key URI: attribute \"" + std::string(part.substr(0, eq)) + "\" has no name=value form"));
    }
    std::string name(part.substr(0, eq));
    if (!Known(known, name)) {
      return std::unexpected(InvalidArgument("key URI: unknown attribute \"" + name + "\""));
    }
    DEVID_ASSIGN_OR_RETURN(std::string value, PercentDecode(part.substr(eq + 1), name));
    auto [unused, inserted] = out.emplace(name, std::move(value));
    if (!inserted && unique) {
      return std::unexpected(InvalidArgument("key URI: attribute \"" + name + "\" repeated"));
    }
  }
  return Ok();
}

// ParseTpm2Handle accepts "0x" and exactly eight hex digits naming an owner persistent handle.
Result<uint32_t> ParseTpm2Handle(std::string_view text) {
  auto bad = [&] {
    return std::unexpected(InvalidArgument(
        "key URI: tpm2: handle \"" + std::string(text) +
        "\" is not a persistent handle 0x81000000-0x817fffff written as 0x and eight hex digits"));
  };
  if (text.size() != 10 || !text.starts_with("0x")) return bad();
  uint32_t handle = 0;
  for (char c : text.substr(2)) {
    int digit = HexValue(c);
    if (digit < 0) return bad();
    handle = handle << 4 | static_cast<uint32_t>(digit);
  }
  if (handle < kTpm2OwnerPersistentFirst || handle > kTpm2OwnerPersistentLast) return bad();
  return handle;
}

}  // namespace

std::optional<std::string> KeyUri::PathAttribute(std::string_view name) const {
  auto it = path_attributes.find(name);
  if (it == path_attributes.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> KeyUri::QueryAttribute(std::string_view name) const {
  auto it = query_attributes.find(name);
  if (it == query_attributes.end()) return std::nullopt;
  return it->second;
}

std::string KeyUri::ToString() const {
  std::string out = scheme + ":";
  if (scheme == "file") {
    out += PercentEncode(path, /*keep_slash=*/true);
  } else {
    bool first = true;
    for (const auto& [name, value] : path_attributes) {
      if (!first) out += ';';
      first = false;
      out += name + "=" + PercentEncode(value, /*keep_slash=*/false);
    }
  }
  // A TCTI configuration ("swtpm:host=h,port=p") stays readable: RFC 3986 §3.4 allows ':', ','
  // and '=' in a query.
  std::string_view keep = scheme == "tpm2" ? ":,=" : "";
  bool first = true;
  for (const auto& [name, value] : query_attributes) {
    out += first ? '?' : '&';
    first = false;
    out += name + "=" +
           (name == "pin-value" ? std::string("REDACTED")
                                : PercentEncode(value, /*keep_slash=*/true, keep));
  }
  return out;
}

Result<KeyUri> ParseKeyUri(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return std::unexpected(InvalidArgument("key URI has no scheme (want file:, pkcs11: or tpm2:)"));
  }
  KeyUri uri;
  uri.scheme = std::string(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);
  size_t question = rest.find('?');
  std::string_view body = rest.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);

  if (uri.scheme == "pkcs11") {
    DEVID_TRY(
        ParseAttributes(body, ';', kPkcs11PathAttributes, /*unique=*/true, uri.path_attributes));
    // RFC 7512 §2.3 lets a query attribute repeat; each of ours has one meaning, so we refuse.
    DEVID_TRY(
        ParseAttributes(query, '&', kPkcs11QueryAttributes, /*unique=*/true, uri.query_attributes));
    return uri;
  }
  if (uri.scheme == "file") {
    // RFC 8089 §2: "file://host/path" with an empty host or "localhost", or "file:/path".
    if (body.starts_with("//")) {
      std::string_view authority_and_path = body.substr(2);
      size_t slash = authority_and_path.find('/');
      std::string_view host = authority_and_path.substr(0, slash);
      if (!host.empty() && host != "localhost") {
        return std::unexpected(InvalidArgument("key URI: file: host must be empty or localhost"));
      }
      body =
          slash == std::string_view::npos ? std::string_view() : authority_and_path.substr(slash);
    }
    if (body.empty()) return std::unexpected(InvalidArgument("key URI: file: has no path"));
    DEVID_ASSIGN_OR_RETURN(uri.path, PercentDecode(body, "path"));
    DEVID_TRY(
        ParseAttributes(query, '&', kFileQueryAttributes, /*unique=*/true, uri.query_attributes));
    return uri;
  }
  if (uri.scheme == "tpm2") {
    DEVID_TRY(
        ParseAttributes(body, ';', kTpm2PathAttributes, /*unique=*/true, uri.path_attributes));
    DEVID_TRY(
        ParseAttributes(query, '&', kTpm2QueryAttributes, /*unique=*/true, uri.query_attributes));
    std::optional<std::string> handle = uri.PathAttribute("handle");
    if (!handle) return std::unexpected(InvalidArgument("key URI: tpm2: has no handle"));
    DEVID_TRY(ParseTpm2Handle(*handle));
    return uri;
  }
  return std::unexpected(
      InvalidArgument("key URI scheme \"" + uri.scheme + "\" is not file, pkcs11 or tpm2"));
}

uint32_t Tpm2Handle(const KeyUri& uri) {
  auto handle = ParseTpm2Handle(uri.PathAttribute("handle").value_or(""));
  return handle ? *handle : 0;
}

}  // namespace devid::keys
