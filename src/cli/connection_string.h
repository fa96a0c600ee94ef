#pragma once

// Header-only so that the unit tests, which do not link the CLI's sources, can test it.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace devid::cli {

// ServiceCredentials are the parts of a DPS service connection string
// "HostName=H;SharedAccessKeyName=N;SharedAccessKey=K".
struct ServiceCredentials {
  std::string host_name;
  std::string key_name;
  std::string key;  // base64
};

// ParseServiceConnectionString splits a service connection string. Fields may come in any order;
// unknown fields are ignored. It fails with kInvalidArgument naming the missing or malformed
// field, and never echoes the key.
inline Result<ServiceCredentials> ParseServiceConnectionString(std::string_view text) {
  ServiceCredentials out;
  while (!text.empty()) {
    size_t semicolon = text.find(';');
    std::string_view part = text.substr(0, semicolon);
    text = semicolon == std::string_view::npos ? std::string_view() : text.substr(semicolon + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return std::unexpected(InvalidArgument("connection string: a field has no '='"));
    }
    // The key is base64 and may itself end in '='; only the first '=' separates.
    std::string_view name = part.substr(0, eq);
    std::string_view value = part.substr(eq + 1);
    if (name == "HostName") {
      out.host_name = value;
    } else if (name == "SharedAccessKeyName") {
      out.key_name = value;
    } else if (name == "SharedAccessKey") {
      out.key = value;
    }
  }
  if (out.host_name.empty()) {
    return std::unexpected(InvalidArgument("connection string: HostName is missing"));
  }
  if (out.key_name.empty()) {
    return std::unexpected(InvalidArgument("connection string: SharedAccessKeyName is missing"));
  }
  if (out.key.empty()) {
    return std::unexpected(InvalidArgument("connection string: SharedAccessKey is missing"));
  }
  return out;
}

// Endpoint is where the service API listens.
struct Endpoint {
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 443;
};

// ParseEndpoint parses "https://HOST[:PORT][/]" ("[::1]:PORT" for IPv6). It fails with
// kInvalidArgument on another scheme, a path, or a bad port.
inline Result<Endpoint> ParseEndpoint(std::string_view url) {
  auto fail = [&](std::string_view why) {
    return std::unexpected(
        InvalidArgument("endpoint " + std::string(url) + ": " + std::string(why)));
  };
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme)) return fail("must start with https://");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return fail("must not have a path");
  Endpoint out;
  std::string_view port;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return fail("unclosed '['");
    out.host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail("expected ':' after ']'");
      port = after.substr(1);
      if (port.empty()) return fail("empty port");
    }
  } else {
    size_t colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return fail("empty port");
    }
  }
  if (out.host.empty()) return fail("has no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return fail("port must be 1-65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

}  // namespace devid::cli
