#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "pki/certificate.h"

namespace devid::api {

// Header is one HTTP header; names are stored lowercase.
using Header = std::pair<std::string, std::string>;

// Request is an HTTP request as the api layer sees it: no sockets, no TLS objects. net/ fills it.
struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // the raw request-target, path and query
  std::vector<Header> headers;
  std::string body;
  std::string remote_address;
  // peer_certificates_der holds the TLS client's certificate chain, leaf first ("" when none).
  std::vector<std::string> peer_certificates_der;
  // peer_certificates is the same chain as the TLS layer parsed it (shared, immutable), so that
  // handlers need not decode it again; null when the request did not come from net/ (tests).
  std::shared_ptr<const std::vector<pki::Certificate>> peer_certificates;

  // Header returns the first value of the (case-insensitive) header name, or "" when absent.
  std::string_view HeaderValue(std::string_view name) const;
  // HasHeader tells whether the header is present at all.
  bool HasHeader(std::string_view name) const;
  // HasPeerCertificate tells whether the TLS client presented a certificate.
  bool HasPeerCertificate() const {
    return !peer_certificates_der.empty() && !peer_certificates_der.front().empty();
  }
  // PeerLeaf returns the TLS client's certificate, shared with peer_certificates when the TLS
  // layer parsed it and decoded from peer_certificates_der otherwise. Fails with
  // kInvalidArgument when there is none or it does not decode.
  Result<pki::Certificate> PeerLeaf() const;
};

// Response is what a handler returns; net/ writes it out. Content-Length is set by net/.
struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;
  // sensitive_body says the body holds a secret (EST serverkeygen's private key): net/ overwrites
  // it (OPENSSL_cleanse) once written, and nothing logs it.
  bool sensitive_body = false;

  void SetHeader(std::string name, std::string value);
};

// Handler turns a request into a response. It may block (on the store) and is called from many
// threads at once.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response Handle(const Request& request) = 0;
  // TryHandleNow answers request at once when it can without blocking (from memory: no store,
  // key or network access), or returns nullopt for Handle to answer it. net/ calls it on its I/O
  // thread first, which spares such requests the trip to a handler thread and back. The default
  // answers nothing.
  virtual std::optional<Response> TryHandleNow(const Request& request) {
    (void)request;
    return std::nullopt;
  }
};

}  // namespace devid::api
