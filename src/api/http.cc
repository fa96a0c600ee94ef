#include "api/http.h"

#include <strings.h>

namespace devid::api {

std::string_view Request::HeaderValue(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return value;
    }
  }
  return {};
}

bool Request::HasHeader(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return true;
    }
  }
  return false;
}

Result<pki::Certificate> Request::PeerLeaf() const {
  if (peer_certificates && !peer_certificates->empty()) return peer_certificates->front().Clone();
  if (!HasPeerCertificate()) {
    return std::unexpected(InvalidArgument("the TLS client presented no certificate"));
  }
  return pki::Certificate::FromDer(peer_certificates_der.front());
}

void Response::SetHeader(std::string name, std::string value) {
  for (auto& [key, existing] : headers) {
    if (strcasecmp(key.c_str(), name.c_str()) == 0) {
      existing = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

}  // namespace devid::api
