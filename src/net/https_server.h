#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/http.h"
#include "base/result.h"
#include "ca/tls_identity.h"

namespace devid::net {

// ServerLimits bounds what one client can make the server hold. Every limit closes the connection
// when exceeded; the ones a well-behaved client can hit are answered with an HTTP error first.
struct ServerLimits {
  // body_limit is the largest request body accepted; a larger one is answered 413 (DPS error
  // 413001) and the connection is closed, without reading the body when Content-Length says so.
  size_t body_limit = 96 * 1024;
  // header_limit is the largest request line plus header block; a larger one is answered 431.
  size_t header_limit = 8 * 1024;
  // handshake_timeout bounds the TLS handshake from the accepted TCP connection.
  std::chrono::seconds handshake_timeout{10};
  // request_timeout bounds receiving one request once its first byte arrived, and separately
  // writing one response (slowloris and slow-reader protection).
  std::chrono::seconds request_timeout{30};
  // idle_timeout bounds waiting for the first byte of the next request on a kept-alive connection.
  std::chrono::seconds idle_timeout{60};
  // max_connections caps the open connections; a connection accepted beyond it is closed at once.
  size_t max_connections = 10000;
};

// ServerOptions is the listener configuration.
struct ServerOptions {
  // host is the address to bind, an IP literal or a name that resolves to one.
  std::string host = "127.0.0.1";
  // port is the TCP port to bind; 0 picks an ephemeral one (see HttpsServer::port()).
  uint16_t port = 0;
  // io_threads is the number of threads doing network I/O and TLS; 0 means one per hardware
  // thread.
  int io_threads = 0;
  // handler_threads is the number of threads calling api::Handler::Handle, which may block.
  int handler_threads = 32;
  ServerLimits limits;
  // request_client_certificate asks TLS clients for a certificate without requiring one and
  // accepts any chain at the TLS layer: the handler validates api::Request::peer_certificates_der.
  bool request_client_certificate = false;
};

// HttpsServer serves HTTP/1.1 over TLS (1.2 or later), or without TLS when started with
// StartPlain, and hands every request to an api::Handler.
//
// Threading: io_threads threads each run their own event loop; an accepted connection stays on
// one of them, where a coroutine performs the handshake, reads requests and writes responses.
// Handler::Handle runs on a separate pool of handler_threads threads, so a blocking handler never
// stalls I/O; the connection's coroutine waits for the result without holding a thread. A request
// Handler::TryHandleNow answers from memory is answered on the I/O thread, without that trip. All
// exceptions from Beast, Asio and the handler are caught per connection; a handler exception is
// answered 500 (DPS error 500000) with a tracking ID that is also logged.
class HttpsServer {
 public:
  // Start binds options.host:options.port, loads the TLS identity (chain leaf first, key PEM) and
  // starts serving. It fails with kInvalidArgument on a bad option or TLS identity and with
  // kUnavailable when the address cannot be bound. handler must outlive the server; tls is copied.
  static Result<std::unique_ptr<HttpsServer>> Start(const ServerOptions& options,
                                                    const ca::TlsIdentity& tls,
                                                    api::Handler& handler);

  // StartPlain is Start without TLS: plain HTTP, for what carries its own signature and is fetched
  // by relying parties that cannot use TLS for it (CRLs and OCSP, RFC 5280 §4.2.1.13, RFC 6960
  // Appendix A; checking a TLS server's certificate through TLS would go round in circles).
  static Result<std::unique_ptr<HttpsServer>> StartPlain(const ServerOptions& options,
                                                         api::Handler& handler);
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // ~HttpsServer shuts down with no grace period (Shutdown(0s)) unless Shutdown already ran.
  ~HttpsServer();

  // port returns the bound TCP port (the ephemeral one when options.port was 0).
  uint16_t port() const;

  // Shutdown stops the server gracefully: it stops accepting (new connections are refused), closes
  // idle keep-alive connections and connections still in their handshake, lets each request
  // already being received or handled complete and answers it with "Connection: close", then
  // force-closes whatever is left after grace. It returns once every connection is closed, every
  // handler call has returned and all threads are joined; a handler call cannot be interrupted, so
  // a handler blocked past grace delays the return. Calling it again does nothing. It must not be
  // called from a handler.
  void Shutdown(std::chrono::seconds grace);

 private:
  class Impl;
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace devid::net
