#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace devid::keys {
class Key;
}  // namespace devid::keys

namespace devid::sdk {

// HttpHeader is one HTTP header; HttpsClient returns names lowercase.
using HttpHeader = std::pair<std::string, std::string>;

// HttpResponse is a response as HttpsClient read it.
struct HttpResponse {
  int status = 0;
  std::vector<HttpHeader> headers;  // names lowercase, in order
  std::string body;

  // HeaderValue returns the first value of the header name (lowercase), or "" when absent.
  std::string_view HeaderValue(std::string_view name) const;
};

// ClientTlsOptions says whom an HttpsClient trusts and, optionally, who it is.
struct ClientTlsOptions {
  // trust_bundle_pem holds the only certificates the server's chain may verify to (required; the
  // system store is never used and verification cannot be turned off).
  std::string trust_bundle_pem;
  // certificate_chain_pem (leaf first) and private_key_pem are the client certificate for mutual
  // TLS; both empty for none.
  std::string certificate_chain_pem;
  std::string private_key_pem;
  // client_key, instead of private_key_pem, is a key that signs the handshake inside its store
  // (keys::OpenSslSigningKey: ECDSA P-256 or P-384); the private key never enters this process.
  std::shared_ptr<const keys::Key> client_key;
  // server_name is the DNS name or IP address the server certificate must match, also sent as SNI
  // when it is a name; empty means the host passed to Connect.
  std::string server_name;
  // timeout bounds each step: resolving, connecting, the handshake, writing a request and reading
  // a response.
  std::chrono::seconds timeout{30};
  // response_body_limit is the largest response body accepted.
  size_t response_body_limit = 64 * 1024 * 1024;
};

// HttpsClient is a synchronous HTTP/1.1-over-TLS client holding one keep-alive connection, for
// the device SDK, the CLI, tests and benchmarks. Not thread-safe: use one per thread. Movable.
class HttpsClient {
 public:
  // Connect opens a TLS connection to host:port and verifies the server's chain against
  // tls.trust_bundle_pem and its name against tls.server_name (or host). It fails with
  // kInvalidArgument on unusable TLS options, kUnavailable when the server cannot be reached and
  // kUnauthenticated when its certificate is rejected; messages read
  // "connecting to https://HOST:PORT: CAUSE".
  static Result<HttpsClient> Connect(std::string_view host, uint16_t port, ClientTlsOptions tls);

  HttpsClient(HttpsClient&&) noexcept;
  HttpsClient& operator=(HttpsClient&&) noexcept;
  ~HttpsClient();

  // Send sends one request on the kept-alive connection and reads the response (header names
  // lowercase). Content-Length is set from body; Host and User-Agent are added unless given. When
  // the connection has been closed (by the server while idle, or after a "Connection: close"
  // response), Send reconnects first; when a reused connection ends before any byte of the
  // response arrives, it reconnects and sends the request once more. It fails with kUnavailable
  // (or kUnauthenticated on reconnecting to a server whose certificate is rejected) naming the
  // step: "sending GET /x to https://HOST:PORT: CAUSE".
  Result<HttpResponse> Send(std::string_view method, std::string_view target,
                             const std::vector<HttpHeader>& headers = {},
                             std::string_view body = {});

  // PeerCertificatesDer returns the server's certificate chain as sent on the current connection,
  // leaf first, DER-encoded.
  std::vector<std::string> PeerCertificatesDer() const;

  // connections returns how many TLS connections this client has opened so far.
  int connections() const;

 private:
  class Impl;
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace devid::sdk
