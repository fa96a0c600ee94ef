#include "sdk/https_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <exception>
#include <optional>

#include "keys/openssl_signing_key.h"
#include "ossl/tls_context.h"

namespace devid::sdk {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;

// IsClosedConnection tells whether ec means the peer closed or reset the connection.
bool IsClosedConnection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// ServerCertificateProblem says in a technician's words why the server's certificate failed
// verification (RFC 5280 §6.1, RFC 6125 §6) and what to check.
std::string ServerCertificateProblem(long verify, const std::string& server_name) {
  switch (verify) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "the server's certificate is not signed by your trust bundle: this is not your "
             "server, or the bundle is out of date";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "the server's certificate has expired: renew it on the server, or check this "
             "device's clock";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "the server's certificate is not valid yet: check this device's clock";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "the server's certificate is not made out to " + server_name +
             ": check the endpoint, or the server name it should carry";
    case X509_V_ERR_CERT_REVOKED:
      return "the server's certificate has been revoked";
    case X509_V_ERR_INVALID_PURPOSE:
      return "the server's certificate is not meant for a TLS server";
    default:
      return "the server's certificate does not verify against your trust bundle";
  }
}

}  // namespace

std::string_view HttpResponse::HeaderValue(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

class HttpsClient::Impl {
 public:
  Impl(std::string_view host, uint16_t port, ClientTlsOptions options)
      : host_(host), port_(port), options_(std::move(options)) {
    if (options_.server_name.empty()) options_.server_name = host_;
    std::string bracketed = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    authority_ = bracketed + ":" + std::to_string(port_);
    url_ = "https://" + authority_;
  }

  // Init builds the TLS context from the options.
  Status Init() {
    std::string doing = "connecting to " + url_;
    if (options_.trust_bundle_pem.empty()) {
      return std::unexpected(InvalidArgument(doing + ": a trust bundle is required"));
    }
    bool has_key = !options_.private_key_pem.empty() || options_.client_key != nullptr;
    if (!options_.private_key_pem.empty() && options_.client_key != nullptr) {
      return std::unexpected(
          InvalidArgument(doing + ": give the client key as PEM or as a key store key, not both"));
    }
    if (options_.certificate_chain_pem.empty() == has_key) {
      return std::unexpected(
          InvalidArgument(doing + ": a client certificate needs both a chain and a key"));
    }
    tls_.emplace(asio::ssl::context::tls_client);
    SSL_CTX* ctx = tls_->native_handle();
    Status status = ossl::SetMinimumTls12(ctx);
    if (status) status = ossl::TrustOnly(ctx, options_.trust_bundle_pem);
    if (status && options_.client_key != nullptr) {
      status = UseClientKey(ctx);
    } else if (status && !options_.certificate_chain_pem.empty()) {
      status = ossl::UseCertificateChainAndKey(ctx, options_.certificate_chain_pem,
                                               options_.private_key_pem);
    }
    if (!status) return std::unexpected(status.error().WithContext(doing));
    return Ok();
  }

  // UseClientKey installs the client certificate with a key that signs in its key store.
  Status UseClientKey(SSL_CTX* ctx) {
    DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> key,
                           keys::OpenSslSigningKey(options_.client_key));
    return ossl::UseCertificateChainAndKey(ctx, options_.certificate_chain_pem, key.get());
  }

  // Open connects and performs the TLS handshake, verifying the server.
  Status Open() {
    Close();
    std::string doing = "connecting to " + url_;
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints =
        resolver.resolve(host_, std::to_string(port_), tcp::resolver::numeric_service, ec);
    if (ec)
      return std::unexpected(Unavailable(doing + ": resolving " + host_ + ": " + ec.message()));
    stream_.emplace(io_, *tls_);
    auto& lowest = beast::get_lowest_layer(*stream_);
    lowest.expires_after(options_.timeout);
    ec = Await([&](auto handler) { lowest.async_connect(endpoints, std::move(handler)); });
    if (ec) {
      Close();
      return std::unexpected(Unavailable(doing + ": " + ec.message()));
    }
    lowest.socket().set_option(tcp::no_delay(true), ec);

    SSL* ssl = stream_->native_handle();
    const std::string& name = options_.server_name;
    bool is_ip = false;
    {
      beast::error_code parse_error;
      asio::ip::make_address(name, parse_error);
      is_ip = !parse_error;
    }
    // RFC 6066 §3: SNI carries DNS names only. The name check is OpenSSL's (RFC 6125).
    bool named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                       : SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
                             SSL_set1_host(ssl, name.c_str()) == 1;
    if (!named) {
      ERR_clear_error();
      Close();
      return std::unexpected(
          InvalidArgument(doing + ": cannot check the server name \"" + name + "\""));
    }

    lowest.expires_after(options_.timeout);
    keys::TakeSigningFailure();  // forget one from an earlier connection
    ec = Await([&](auto handler) {
      stream_->async_handshake(asio::ssl::stream_base::client, std::move(handler));
    });
    if (ec) {
      long verify = SSL_get_verify_result(ssl);
      if (auto failed = keys::TakeSigningFailure()) {
        ERR_clear_error();
        Close();
        return std::unexpected(Error(failed->code(), doing + ": signing the TLS handshake: " +
                                                         failed->message()));
      }
      ERR_clear_error();
      Close();
      if (verify != X509_V_OK) {
        return std::unexpected(Unauthenticated(doing + ": server certificate rejected: " +
                                               X509_verify_cert_error_string(verify) + " (" +
                                               ServerCertificateProblem(verify, name) + ")"));
      }
      return std::unexpected(Unavailable(doing + ": TLS handshake: " + ec.message()));
    }
    ++connections_;
    responses_on_connection_ = 0;
    return Ok();
  }

  Result<HttpResponse> Send(std::string_view method, std::string_view target,
                             const std::vector<HttpHeader>& headers, std::string_view body) {
    http::request<http::string_body> request;
    request.version(11);
    request.method_string(method);
    request.target(target);
    for (const auto& [name, value] : headers) request.insert(name, value);
    if (request.find(http::field::host) == request.end())
      request.set(http::field::host, authority_);
    if (request.find(http::field::user_agent) == request.end()) {
      request.set(http::field::user_agent, "devid");
    }
    request.body().assign(body);
    request.prepare_payload();

    std::string doing =
        "sending " + std::string(method) + " " + std::string(target) + " to " + url_;
    if (!stream_ || PeerClosed()) DEVID_TRY(Open());
    // Only a connection that has carried a response before can have been closed while idle.
    bool reused = responses_on_connection_ > 0;
    bool retry = false;
    auto response = SendOnce(request, doing, retry);
    if (!response && retry && reused) {
      DEVID_TRY(Open());
      response = SendOnce(request, doing, retry);
    }
    return response;
  }

  std::vector<std::string> PeerCertificatesDer() const {
    if (!stream_) return {};
    // Asio's native_handle() is not const; reading the chain does not change the connection.
    return ossl::PeerChainDer(const_cast<Stream&>(*stream_).native_handle());
  }

  int connections() const { return connections_; }

 private:
  // Await starts one asynchronous operation through initiate(handler) and runs the event loop
  // until it and its timer are done, returning the operation's error.
  template <typename Initiate>
  beast::error_code Await(Initiate&& initiate) {
    beast::error_code result;
    initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  // SendOnce writes request and reads the response. On failure it sets retry when the connection
  // ended before the first byte of the response, i.e. the server never answered on it.
  Result<HttpResponse> SendOnce(http::request<http::string_body>& request,
                                 const std::string& doing, bool& retry) {
    retry = false;
    auto& lowest = beast::get_lowest_layer(*stream_);
    lowest.expires_after(options_.timeout);
    beast::error_code ec =
        Await([&](auto handler) { http::async_write(*stream_, request, std::move(handler)); });
    if (ec) {
      retry = IsClosedConnection(ec);
      Close();
      return std::unexpected(Unavailable(doing + ": " + ec.message()));
    }
    std::optional<http::response_parser<http::string_body>> parser;
    bool got_some = false;
    lowest.expires_after(options_.timeout);
    do {
      // Interim 1xx responses (RFC 9110 §15.2) precede the final one; skip them.
      parser.emplace();
      parser->body_limit(options_.response_body_limit);
      parser->header_limit(64 * 1024);
      if (request.method() == http::verb::head) parser->skip(true);
      ec = Await(
          [&](auto handler) { http::async_read(*stream_, buffer_, *parser, std::move(handler)); });
      got_some = got_some || parser->got_some();
      if (ec) {
        retry = !got_some && IsClosedConnection(ec);
        Close();
        return std::unexpected(Unavailable(doing + ": reading the response: " + ec.message()));
      }
    } while (parser->get().result_int() / 100 == 1);
    lowest.expires_never();
    auto& message = parser->get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.headers.reserve(static_cast<size_t>(std::distance(message.begin(), message.end())));
    for (const auto& field : message) {
      response.headers.emplace_back(Lowercase(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    ++responses_on_connection_;
    if (!message.keep_alive()) Close();
    return response;
  }

  // PeerClosed tells whether the server closed or reset the idle connection, without consuming
  // anything: readable with nothing to peek means end of stream.
  bool PeerClosed() {
    if (!stream_) return true;
    int fd = beast::get_lowest_layer(*stream_).socket().native_handle();
    pollfd descriptor{fd, POLLIN, 0};
    if (::poll(&descriptor, 1, 0) <= 0) return false;
    if ((descriptor.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return true;
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  void Close() {
    if (stream_) {
      beast::get_lowest_layer(*stream_).close();
      stream_.reset();
    }
    buffer_.clear();
    // Drop the closed stream's cancelled timer handlers.
    io_.restart();
    io_.poll();
    ERR_clear_error();
  }

  std::string host_;
  uint16_t port_;
  ClientTlsOptions options_;
  std::string authority_;
  std::string url_;
  asio::io_context io_{1};
  std::optional<asio::ssl::context> tls_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  int connections_ = 0;
  int responses_on_connection_ = 0;
};

Result<HttpsClient> HttpsClient::Connect(std::string_view host, uint16_t port,
                                         ClientTlsOptions tls) {
  try {
    auto impl = std::make_unique<Impl>(host, port, std::move(tls));
    DEVID_TRY(impl->Init());
    DEVID_TRY(impl->Open());
    return HttpsClient(std::move(impl));
  } catch (const std::exception& e) {
    return std::unexpected(Internal("connecting to https://" + std::string(host) + ":" +
                                    std::to_string(port) + ": " + e.what()));
  }
}

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::HttpsClient(HttpsClient&&) noexcept = default;
HttpsClient& HttpsClient::operator=(HttpsClient&&) noexcept = default;
HttpsClient::~HttpsClient() = default;

Result<HttpResponse> HttpsClient::Send(std::string_view method, std::string_view target,
                                        const std::vector<HttpHeader>& headers,
                                        std::string_view body) {
  try {
    return impl_->Send(method, target, headers, body);
  } catch (const std::exception& e) {
    return std::unexpected(
        Internal("sending " + std::string(method) + " " + std::string(target) + ": " + e.what()));
  }
}

std::vector<std::string> HttpsClient::PeerCertificatesDer() const {
  return impl_->PeerCertificatesDer();
}

int HttpsClient::connections() const { return impl_->connections(); }

}  // namespace devid::sdk
