#include "devid/peer_session.h"

#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "keys/openssl_signing_key.h"
#include "ossl/error.h"
#include "ossl/tls_context.h"
#include "ossl/unique_ptr.h"

namespace devid::sdk {
namespace {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// PeerCheck is one handshake's verification: what to check and what came of it. The SSL object
// points at it (SSL_set_app_data) for the certificate callback.
struct PeerCheck {
  const PeerSessionOptions* options = nullptr;
  std::optional<Result<VerifiedPeer>> result;
};

// VerifyWithPeerTrust replaces OpenSSL's own chain check (SSL_CTX_set_cert_verify_callback):
// the chain is judged only by the cached trust bundle and CRLs, and a refusal keeps its reason.
int VerifyWithPeerTrust(X509_STORE_CTX* store, void* /*arg*/) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* check = static_cast<PeerCheck*>(SSL_get_app_data(ssl));
  X509* leaf_x509 = X509_STORE_CTX_get0_cert(store);
  if (check == nullptr || leaf_x509 == nullptr) return 0;
  X509_up_ref(leaf_x509);
  pki::Certificate leaf = pki::Certificate::Adopt(ossl::UniquePtr<X509>(leaf_x509));
  std::vector<pki::Certificate> sent;
  STACK_OF(X509)* untrusted = X509_STORE_CTX_get0_untrusted(store);
  for (int i = 0; untrusted != nullptr && i < sk_X509_num(untrusted); ++i) {
    X509* x509 = sk_X509_value(untrusted, i);
    X509_up_ref(x509);
    sent.push_back(pki::Certificate::Adopt(ossl::UniquePtr<X509>(x509)));
  }
  check->result = check->options->trust->VerifyPeer(leaf, sent, check->options->expected_peer);
  if (!*check->result) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}

Result<std::shared_ptr<SSL_CTX>> MakeContext(const PeerSessionOptions& options, bool server) {
  if (options.trust == nullptr || !options.key) {
    return std::unexpected(InvalidArgument("peer session: a key and a peer trust are required"));
  }
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()),
                               SSL_CTX_free);
  if (!ctx) return std::unexpected(ossl::ErrorFromQueue("creating a TLS context"));
  // Both ends are ours: TLS 1.3 only (RFC 8446), no renegotiation or 1.2 downgrade to reason about.
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("requiring TLS 1.3"));
  }
  DEVID_ASSIGN_OR_RETURN(auto pkey, keys::OpenSslSigningKey(options.key));
  DEVID_TRY(ossl::UseCertificateChainAndKey(ctx.get(), options.certificate_chain_pem, pkey.get()));
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx.get(), VerifyWithPeerTrust, nullptr);
  return ctx;
}

void SetTimeouts(int fd, std::chrono::seconds timeout) {
  timeval tv{.tv_sec = static_cast<time_t>(timeout.count()), .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<addrinfo*> Resolve(std::string_view host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  std::string host_text(host);
  int rc = getaddrinfo(host_text.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return std::unexpected(Unavailable("resolving " + host_text + ": " + gai_strerror(rc)));
  }
  return found;
}

}  // namespace

class PeerConnection::Impl {
 public:
  Socket socket;
  std::unique_ptr<SSL, SslFree> ssl;
  std::unique_ptr<PeerCheck> check;
  VerifiedPeer peer;
  std::string buffer;
};

// Handshake runs the TLS handshake on a connected socket; the peer has been verified when it
// succeeds.
static Result<PeerConnection> Handshake(Socket socket, SSL_CTX* ctx,
                                        const PeerSessionOptions& options, bool server) {
  auto impl = std::make_unique<PeerConnection::Impl>();
  SetTimeouts(socket.get(), options.timeout);
  impl->socket = std::move(socket);
  impl->ssl.reset(SSL_new(ctx));
  impl->check = std::make_unique<PeerCheck>(PeerCheck{.options = &options});
  if (!impl->ssl || SSL_set_fd(impl->ssl.get(), impl->socket.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting up a peer TLS session"));
  }
  SSL_set_app_data(impl->ssl.get(), impl->check.get());
  int rc = server ? SSL_accept(impl->ssl.get()) : SSL_connect(impl->ssl.get());
  if (rc != 1) {
    if (impl->check->result && !*impl->check->result) {
      ERR_clear_error();
      return std::unexpected(impl->check->result->error());
    }
    return std::unexpected(
        ossl::ErrorFromQueue("TLS handshake with the peer", ErrorCode::kUnavailable));
  }
  if (!impl->check->result || !*impl->check->result) {
    return std::unexpected(Unauthenticated("the peer presented no certificate"));
  }
  impl->peer = **impl->check->result;
  return PeerConnection(std::move(impl));
}

PeerConnection::PeerConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PeerConnection::PeerConnection(PeerConnection&&) noexcept = default;
PeerConnection& PeerConnection::operator=(PeerConnection&&) noexcept = default;
PeerConnection::~PeerConnection() {
  if (impl_ && impl_->ssl) SSL_shutdown(impl_->ssl.get());
}

const VerifiedPeer& PeerConnection::peer() const { return impl_->peer; }

Status PeerConnection::WriteLine(std::string_view line) {
  std::string data = std::string(line) + "\n";
  size_t written = 0;
  if (SSL_write_ex(impl_->ssl.get(), data.data(), data.size(), &written) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("writing to peer " + impl_->peer.name, ErrorCode::kUnavailable));
  }
  return Ok();
}

Result<std::string> PeerConnection::ReadLine() {
  constexpr size_t kLimit = 4096;
  while (impl_->buffer.find('\n') == std::string::npos) {
    if (impl_->buffer.size() > kLimit) {
      return std::unexpected(
          Unavailable("reading from peer " + impl_->peer.name + ": a line longer than 4 KiB"));
    }
    char chunk[1024];
    size_t got = 0;
    if (SSL_read_ex(impl_->ssl.get(), chunk, sizeof chunk, &got) != 1) {
      int error = SSL_get_error(impl_->ssl.get(), 0);
      // In TLS 1.3 the client finishes its handshake before the server has judged its
      // certificate: a refusal arrives here, as an alert.
      ErrorCode code =
          error == SSL_ERROR_SSL ? ErrorCode::kUnauthenticated : ErrorCode::kUnavailable;
      std::string doing = code == ErrorCode::kUnauthenticated
                              ? "peer " + impl_->peer.name + " refused this device"
                              : "reading from peer " + impl_->peer.name;
      return std::unexpected(ossl::ErrorFromQueue(doing, code));
    }
    impl_->buffer.append(chunk, got);
  }
  size_t end = impl_->buffer.find('\n');
  std::string line = impl_->buffer.substr(0, end);
  impl_->buffer.erase(0, end + 1);
  return line;
}

class PeerListener::Impl {
 public:
  Socket socket;
  uint16_t port = 0;
  std::shared_ptr<SSL_CTX> ctx;
  PeerSessionOptions options;
};

PeerListener::PeerListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PeerListener::PeerListener(PeerListener&&) noexcept = default;
PeerListener& PeerListener::operator=(PeerListener&&) noexcept = default;
PeerListener::~PeerListener() = default;

uint16_t PeerListener::port() const { return impl_->port; }

Result<PeerListener> PeerListener::Listen(std::string_view host, uint16_t port,
                                          PeerSessionOptions options) {
  auto impl = std::make_unique<Impl>();
  DEVID_ASSIGN_OR_RETURN(impl->ctx, MakeContext(options, /*server=*/true));
  impl->options = std::move(options);
  std::string where = "listening on " + std::string(host) + ":" + std::to_string(port);
  DEVID_ASSIGN_OR_RETURN(addrinfo * found, Resolve(host, port, /*passive=*/true));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  Socket socket(::socket(found->ai_family, found->ai_socktype, found->ai_protocol));
  int on = 1;
  if (socket.get() < 0 || setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      bind(socket.get(), found->ai_addr, found->ai_addrlen) != 0 || listen(socket.get(), 16) != 0) {
    return std::unexpected(Unavailable(where + ": " + std::strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(socket.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  impl->port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl->socket = std::move(socket);
  return PeerListener(std::move(impl));
}

Result<PeerConnection> PeerListener::Accept() {
  int fd = accept(impl_->socket.get(), nullptr, nullptr);
  if (fd < 0)
    return std::unexpected(Unavailable(std::string("accepting a peer: ") + std::strerror(errno)));
  return Handshake(Socket(fd), impl_->ctx.get(), impl_->options, /*server=*/true);
}

Result<PeerConnection> ConnectToPeer(std::string_view host, uint16_t port,
                                     const PeerSessionOptions& options) {
  DEVID_ASSIGN_OR_RETURN(auto ctx, MakeContext(options, /*server=*/false));
  std::string where = "connecting to peer " + std::string(host) + ":" + std::to_string(port);
  DEVID_ASSIGN_OR_RETURN(addrinfo * found, Resolve(host, port, /*passive=*/false));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  Socket socket(::socket(found->ai_family, found->ai_socktype, found->ai_protocol));
  if (socket.get() < 0 || connect(socket.get(), found->ai_addr, found->ai_addrlen) != 0) {
    return std::unexpected(Unavailable(where + ": " + std::strerror(errno)));
  }
  auto connection = Handshake(std::move(socket), ctx.get(), options, /*server=*/false);
  if (!connection) return std::unexpected(connection.error().WithContext(where));
  return connection;
}

}  // namespace devid::sdk
