#include "net/https_server.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "base/random.h"
#include "net/tls.h"
#include "ossl/tls_context.h"

namespace devid::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using PlainStream = beast::tcp_stream;
using Clock = std::chrono::steady_clock;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// kReadChunk is how much one read asks for: a full TLS record's worth of plaintext.
constexpr size_t kReadChunk = 16 * 1024;
// A connection closed by the server after an error response keeps reading (and discarding) for a
// little while, so the client's unsent request bytes do not make the kernel answer with a reset
// that destroys the response before the client reads it (cf. nginx lingering_close).
constexpr std::chrono::seconds kMaxLinger{2};
constexpr size_t kMaxLingerBytes = 1024 * 1024;

std::string TrackingId() { return SecureRandom().Uuid(); }

// CallHandler runs the handler and turns an exception into a 500.
api::Response CallHandler(api::Handler& handler, const api::Request& request) {
  try {
    return handler.Handle(request);
  } catch (const std::exception& e) {
    std::string id = TrackingId();
    spdlog::error("handler threw on {} {} (trackingId {}): {}", request.method,
                  request.target.substr(0, request.target.find('?')), id, e.what());
    return api::ErrorResponse(api::error_code::kInternal, "internal error", id);
  } catch (...) {
    std::string id = TrackingId();
    spdlog::error("handler threw a non-exception on {} (trackingId {})", request.method, id);
    return api::ErrorResponse(api::error_code::kInternal, "internal error", id);
  }
}

// CallTryHandleNow offers the request to the handler's non-blocking path on the I/O thread; an
// exception leaves the request to Handle, which answers it (or its own exception) properly.
std::optional<api::Response> CallTryHandleNow(api::Handler& handler, const api::Request& request) {
  try {
    return handler.TryHandleNow(request);
  } catch (const std::exception& e) {
    spdlog::warn("handler's non-blocking path threw on {}: {}", request.method, e.what());
  } catch (...) {
    spdlog::warn("handler's non-blocking path threw a non-exception on {}", request.method);
  }
  return std::nullopt;
}

// AsyncHandle calls handler.Handle(request) on pool and completes with the response on the
// awaiting operation's own executor, so the I/O thread is free while the handler blocks. request
// must stay alive and unchanged until completion.
template <typename CompletionToken>
auto AsyncHandle(asio::thread_pool::executor_type pool, api::Handler& handler,
                 const api::Request& request, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(api::Response)>(
      [pool, &handler, &request](auto completion) {
        auto work = asio::make_work_guard(completion);
        asio::post(pool, [&handler, &request, completion = std::move(completion),
                          work = std::move(work)]() mutable {
          api::Response response = CallHandler(handler, request);
          auto executor = work.get_executor();
          asio::post(executor, asio::append(std::move(completion), std::move(response)));
        });
      },
      token);
}

// IsMalformed tells whether a parse error means the client sent something that is not HTTP/1.1.
bool IsMalformed(const beast::error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::bad_method).category()) return false;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::bad_line_ending:
    case http::error::bad_method:
    case http::error::bad_target:
    case http::error::bad_version:
    case http::error::bad_field:
    case http::error::bad_value:
    case http::error::bad_content_length:
    case http::error::bad_transfer_encoding:
    case http::error::bad_chunk:
    case http::error::bad_chunk_extension:
    case http::error::bad_obs_fold:
    case http::error::multiple_content_length:
    case http::error::unexpected_body:
      return true;
    default:
      return false;
  }
}

// IsToken tells whether name is an RFC 9110 §5.6.2 token, i.e. a valid field name.
bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

// IsSafeValue rejects field values that could split the header block (RFC 9110 §5.5).
bool IsSafeValue(std::string_view value) {
  // A plain loop: find_first_of with a three-character set tests each character against each.
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// IsManagedHeader names the headers the server sets itself from the message framing.
bool IsManagedHeader(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection") || beast::iequals(name, "keep-alive");
}

// ResponseHead is a response's status line and header block (RFC 9112 §4, §6): the handler's
// valid headers, then the framing the server owns (Content-Length unless there is none to give,
// Connection when it differs from the version's default). Built into one buffer by hand: Beast's
// serializer walks a chain of buffer views that cost more than a cached OCSP answer itself.
std::string ResponseHead(const api::Response& response, unsigned version, bool keep_alive,
                         std::optional<size_t> content_length) {
  std::string head;
  head.reserve(512);
  head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  head += http::obsolete_reason(http::int_to_status(static_cast<unsigned>(response.status)));
  head += "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (!IsToken(name) || !IsSafeValue(value)) {
      spdlog::warn("dropping a response header with an invalid name or value");
      continue;
    }
    if (IsManagedHeader(name)) continue;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (content_length) {
    head += "Content-Length: ";
    head += std::to_string(*content_length);
    head += "\r\n";
  }
  if (version == 10 && keep_alive) head += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

// ServerContext is what every connection shares; the server owns it and outlives them all.
struct ServerContext {
  ServerLimits limits;
  bool request_client_certificate = false;
  asio::ssl::context* tls = nullptr;
  std::optional<asio::thread_pool::executor_type> handler_executor;
  api::Handler* handler = nullptr;
  // draining is set when shutdown begins, before the listener closes: from then on every response
  // says "Connection: close".
  std::atomic<bool> draining{false};
};

// ServedConnection is what the server needs of a connection, whatever its transport.
class ServedConnection {
 public:
  virtual ~ServedConnection() = default;
  virtual asio::any_io_executor executor() = 0;
  // Run serves requests until the connection ends. It never throws.
  virtual asio::awaitable<void> Run() = 0;
  // Drain asks the connection to finish: an idle or handshaking connection closes now, one busy
  // with a request answers it with "Connection: close" first.
  virtual void Drain() = 0;
  // Close closes the socket whatever the connection is doing; pending operations fail.
  virtual void Close() = 0;
};

// Connection is one accepted TCP connection, over TLS (TlsStream) or not (PlainStream). Its
// coroutine and Drain/Close all run on the one thread of its io_context, so its members need no
// lock.
template <typename Stream>
class Connection final : public ServedConnection {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Connection(const ServerContext& context, tcp::socket socket, std::string remote)
      : context_(context),
        stream_(MakeStream(std::move(socket), context)),
        remote_(std::move(remote)) {}

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  asio::awaitable<void> Run() override {
    try {
      co_await Serve();
    } catch (const std::exception& e) {
      spdlog::warn("connection from {} failed: {}", remote_, e.what());
    } catch (...) {
      spdlog::warn("connection from {} failed with a non-exception", remote_);
    }
    beast::get_lowest_layer(stream_).close();
  }

  void Drain() override {
    draining_ = true;
    if (state_ == State::kHandshake || state_ == State::kIdle) {
      beast::get_lowest_layer(stream_).cancel();
    }
  }

  void Close() override { beast::get_lowest_layer(stream_).close(); }

 private:
  enum class State { kNew, kHandshake, kIdle, kBusy, kClosing };

  static Stream MakeStream(tcp::socket socket, const ServerContext& context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context.tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  bool Draining() const { return draining_ || context_.draining.load(std::memory_order_relaxed); }

  asio::awaitable<void> Serve() {
    auto& tcp = beast::get_lowest_layer(stream_);
    if (Draining()) co_return;
    if constexpr (kTls) {
      state_ = State::kHandshake;
      tcp.expires_after(context_.limits.handshake_timeout);
      auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, kTuple);
      if (ec) {
        spdlog::debug("TLS handshake with {} failed: {}", remote_, ec.message());
        co_return;
      }
      if (context_.request_client_certificate) {
        auto chain =
            std::make_shared<std::vector<pki::Certificate>>(PeerChain(stream_.native_handle()));
        request_.peer_certificates_der.clear();
        for (const pki::Certificate& certificate : *chain) {
          request_.peer_certificates_der.push_back(certificate.ToDer());
        }
        request_.peer_certificates = std::move(chain);
      }
    }
    request_.remote_address = remote_;

    for (;;) {
      if (Draining()) co_return;
      if (buffer_.size() == 0) {
        state_ = State::kIdle;
        tcp.expires_after(context_.limits.idle_timeout);
        auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk), kTuple);
        if (ec) co_return;  // The client left, it idled too long, or the server is draining.
        buffer_.commit(n);
      }
      // From the first byte on, the whole request must arrive within request_timeout.
      state_ = State::kBusy;
      tcp.expires_after(context_.limits.request_timeout);
      beast::error_code ec = co_await ReadRequest();
      if (ec) {
        co_await Reject(ec);
        co_return;
      }
      bool keep_alive = co_await Respond();
      if (!keep_alive) {
        co_await CloseGracefully();
        co_return;
      }
    }
  }

  // ReadRequest parses one request into parser_, answering "Expect: 100-continue".
  asio::awaitable<beast::error_code> ReadRequest() {
    parser_.emplace();
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(context_.limits.header_limit, UINT32_MAX)));
    parser_->body_limit(context_.limits.body_limit);
    {
      auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser_, kTuple);
      if (ec) co_return ec;
    }
    if (parser_->is_done()) co_return beast::error_code{};
    // RFC 9110 §10.1.1: a client waiting for 100 Continue sends the body only after it; one
    // that sent body bytes already is not waiting.
    if (buffer_.size() == 0 &&
        beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, parser_->get().version()};
      auto [ec, n] = co_await http::async_write(stream_, go_on, kTuple);
      if (ec) co_return ec;
    }
    auto [ec, n] = co_await http::async_read(stream_, buffer_, *parser_, kTuple);
    co_return ec;
  }

  // Reject answers a request that could not be read, when there is anyone to answer.
  asio::awaitable<void> Reject(const beast::error_code& ec) {
    int code = 0;
    std::string message;
    if (ec == http::error::body_limit) {
      code = api::error_code::kBodyTooLarge;
      message =
          "request body exceeds the " + std::to_string(context_.limits.body_limit) + "-byte limit";
    } else if (ec == http::error::header_limit) {
      code = api::error_code::kHeaderTooLarge;
      message = "request header exceeds the " + std::to_string(context_.limits.header_limit) +
                "-byte limit";
    } else if (IsMalformed(ec)) {
      code = api::error_code::kMalformedRequest;
      message = "malformed HTTP request";
    } else {
      // A timeout, a reset or the end of the stream: nobody is listening for an answer.
      spdlog::debug("reading a request from {}: {}", remote_, ec.message());
      co_return;
    }
    std::string id = TrackingId();
    spdlog::debug("rejecting a request from {} (trackingId {}): {}: {}", remote_, id, message,
                  ec.message());
    api::Response response = api::ErrorResponse(code, message, id);
    auto& tcp = beast::get_lowest_layer(stream_);
    tcp.expires_after(context_.limits.request_timeout);
    unsigned version = parser_->get().version() == 10 ? 10 : 11;
    if (co_await Write(response, version, /*keep_alive=*/false, /*head=*/false)) {
      co_await Linger();
    }
  }

  // Respond hands the parsed request to the handler and writes its response. It returns whether
  // the connection may serve another request.
  asio::awaitable<bool> Respond() {
    auto start = Clock::now();
    auto& message = parser_->get();
    request_.method.assign(message.method_string());
    request_.target.assign(message.target());
    size_t i = 0;
    for (const auto& field : message) {
      // Reuse the strings of the previous request's headers: no allocation when they fit.
      if (i == request_.headers.size()) request_.headers.emplace_back();
      auto& [name, value] = request_.headers[i++];
      name.assign(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      value.assign(field.value());
    }
    request_.headers.erase(request_.headers.begin() + static_cast<std::ptrdiff_t>(i),
                           request_.headers.end());
    request_.body = std::move(message.body());

    // Not one conditional expression: GCC 12 miscompiles co_await inside ?: (its temporaries).
    std::optional<api::Response> answered_now = CallTryHandleNow(*context_.handler, request_);
    api::Response response;
    if (answered_now) {
      response = std::move(*answered_now);
    } else {
      response = co_await AsyncHandle(*context_.handler_executor, *context_.handler, request_,
                                      asio::use_awaitable);
    }

    bool keep_alive = message.keep_alive() && !Draining();
    beast::get_lowest_layer(stream_).expires_after(context_.limits.request_timeout);
    bool written = co_await Write(response, message.version(), keep_alive,
                                  message.method() == http::verb::head);
    if (spdlog::should_log(spdlog::level::debug)) {
      std::string_view target = request_.target;
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      spdlog::debug("{} {} {} {:.3f}ms{}", request_.method, target.substr(0, target.find('?')),
                    response.status, static_cast<double>(micros.count()) / 1000.0,
                    written ? "" : " (not delivered)");
    }
    bool reusable = written && keep_alive;
    co_return reusable;
  }

  // Write sends response and returns whether it was written entirely. For HEAD it sends the
  // Content-Length of the body it leaves out (RFC 9110 §9.3.2).
  asio::awaitable<bool> Write(api::Response& response, unsigned version, bool keep_alive,
                              bool head) {
    if (response.status < 200 || response.status > 999) {
      std::string id = TrackingId();
      spdlog::error("handler returned HTTP status {} (trackingId {})", response.status, id);
      response = api::ErrorResponse(api::error_code::kInternal, "internal error", id);
    }
    bool bodiless = response.status == 204 || response.status == 304;
    if (bodiless) response.body.clear();
    std::string start = ResponseHead(response, version, keep_alive,
                                     bodiless ? std::nullopt : std::optional(response.body.size()));
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(start), head ? asio::const_buffer() : asio::buffer(response.body)};
    auto [ec, n] = co_await asio::async_write(stream_, buffers, kTuple);
    // A secret in the body (EST serverkeygen's private key) is overwritten before it is freed.
    if (response.sensitive_body) OPENSSL_cleanse(response.body.data(), response.body.size());
    if (ec) {
      spdlog::debug("writing a response to {}: {}", remote_, ec.message());
      co_return false;
    }
    co_return true;
  }

  // CloseGracefully sends a TLS close_notify after the last response and waits briefly for the
  // client's; without TLS it ends the sending side, as a FIN says the same.
  asio::awaitable<void> CloseGracefully() {
    state_ = State::kClosing;
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(
          std::min<std::chrono::seconds>(context_.limits.request_timeout, kMaxLinger));
      co_await stream_.async_shutdown(kTuple);
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // Linger reads and discards what the client still sends after an error response, for a bounded
  // time and size, then lets the caller close.
  asio::awaitable<void> Linger() {
    state_ = State::kClosing;
    beast::get_lowest_layer(stream_).expires_after(
        std::min<std::chrono::seconds>(context_.limits.request_timeout, kMaxLinger));
    buffer_.clear();
    size_t discarded = 0;
    while (discarded < kMaxLingerBytes) {
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk), kTuple);
      if (ec) break;
      discarded += n;
    }
  }

  const ServerContext& context_;
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // request_ is reused across the connection's requests; remote_address and the peer
  // certificates are set once, after the handshake.
  api::Request request_;
  State state_ = State::kNew;
  bool draining_ = false;
};

}  // namespace

class HttpsServer::Impl {
 public:
  Impl(const ServerOptions& options, api::Handler& handler) : options_(options) {
    context_.limits = options.limits;
    context_.request_client_certificate = options.request_client_certificate;
    context_.handler = &handler;
  }

  ~Impl() { Shutdown(std::chrono::seconds(0)); }

  // Init sets up TLS (none without identity), binds and starts the threads. Exceptions are the
  // caller's to catch.
  Status Init(const ca::TlsIdentity* identity) {
    if (options_.handler_threads < 1) {
      return std::unexpected(InvalidArgument("handler_threads must be at least 1"));
    }
    if (options_.io_threads < 0) {
      return std::unexpected(InvalidArgument("io_threads must not be negative"));
    }
    const ServerLimits& limits = options_.limits;
    if (limits.max_connections < 1) {
      return std::unexpected(InvalidArgument("limits.max_connections must be at least 1"));
    }
    if (limits.body_limit < 1 || limits.header_limit < 1) {
      return std::unexpected(
          InvalidArgument("limits.body_limit and limits.header_limit must be positive"));
    }
    for (auto [name, value] : {std::pair{"handshake_timeout", limits.handshake_timeout},
                               std::pair{"request_timeout", limits.request_timeout},
                               std::pair{"idle_timeout", limits.idle_timeout}}) {
      if (value.count() < 1) {
        return std::unexpected(
            InvalidArgument("limits." + std::string(name) + " must be at least one second"));
      }
    }
    if (identity != nullptr) DEVID_TRY(InitTls(*identity));

    unsigned io_threads = options_.io_threads > 0
                              ? static_cast<unsigned>(options_.io_threads)
                              : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < io_threads; ++i) {
      // One thread per io_context: a connection's handlers then never run concurrently.
      io_contexts_.push_back(std::make_unique<asio::io_context>(1));
      work_.push_back(asio::make_work_guard(*io_contexts_.back()));
    }

    DEVID_TRY(Listen());

    handler_pool_.emplace(static_cast<size_t>(options_.handler_threads));
    context_.handler_executor = handler_pool_->get_executor();
    for (auto& io_context : io_contexts_) {
      io_threads_.emplace_back([io = io_context.get()] { RunLoop(*io); });
    }
    asio::co_spawn(*io_contexts_.front(), Accept(), [](std::exception_ptr e) {
      if (e) spdlog::error("the HTTPS accept loop ended with an exception");
    });
    spdlog::info("serving {} on {}:{}", identity != nullptr ? "HTTPS" : "HTTP", options_.host,
                 port_);
    return Ok();
  }

  uint16_t port() const { return port_; }

  void Shutdown(std::chrono::seconds grace) {
    auto deadline = Clock::now() + grace;
    std::vector<std::shared_ptr<ServedConnection>> open;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      context_.draining = true;
      for (auto& [key, connection] : connections_) open.push_back(connection);
    }
    CloseAcceptor();
    for (auto& connection : open) {
      asio::post(connection->executor(), [connection] { connection->Drain(); });
    }
    open.clear();
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [this] { return connections_.empty(); })) {
        spdlog::info("closing {} connection(s) still open after the shutdown grace period",
                     connections_.size());
        for (auto& [key, connection] : connections_) {
          asio::post(connection->executor(), [connection] { connection->Close(); });
        }
        // A connection waiting for its handler ends once the handler returns.
        cv_.wait(lock, [this] { return connections_.empty(); });
      }
    }
    if (handler_pool_) handler_pool_->join();
    for (auto& work : work_) work.reset();
    for (auto& io_context : io_contexts_) io_context->stop();
    for (auto& thread : io_threads_) thread.join();
    io_threads_.clear();
  }

 private:
  Status InitTls(const ca::TlsIdentity& identity) {
    tls_.emplace(asio::ssl::context::tls_server);
    SSL_CTX* ctx = tls_->native_handle();
    DEVID_TRY(ossl::SetMinimumTls12(ctx));
    if (Status loaded = ossl::UseCertificateChainAndKey(ctx, identity.certificate_chain_pem,
                                                        identity.private_key_pem);
        !loaded) {
      return std::unexpected(loaded.error().WithContext("loading the server TLS identity"));
    }
    if (options_.request_client_certificate) {
      // Ask for a certificate but accept any chain, or none: the handler decides what a
      // certificate proves (an enrollment's CA, a thumbprint), which TLS cannot.
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
      // Nor build a path here that nothing would use: without this OpenSSL still runs
      // X509_verify_cert (signature checks included) on every full handshake before the callback
      // above accepts the result. The handshake still proves possession of the leaf's key
      // (CertificateVerify, RFC 8446 §4.4.3); the handler validates the chain.
      SSL_CTX_set_cert_verify_callback(
          ctx, [](X509_STORE_CTX*, void*) { return 1; }, nullptr);
      // Session resumption needs a context ID once peers are verified (SSL_CTX_set_verify(3)).
      static constexpr unsigned char kSessionContext[] = "devid";
      SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
      // A stateless ticket carries the peer's leaf but not its chain (i2d_SSL_SESSION), so an X.509
      // device resuming with one would lose its intermediates; stateful tickets resume the session
      // kept in this process, chain and all.
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    context_.tls = &*tls_;
    return Ok();
  }

  Status Listen() {
    asio::io_context& io = *io_contexts_.front();
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
      return std::unexpected(InvalidArgument("resolving the listen address " + options_.host +
                                             ": " + (ec ? ec.message() : "no address")));
    }
    tcp::endpoint endpoint = endpoints.begin()->endpoint();
    std::string where = options_.host + ":" + std::to_string(options_.port);
    auto failed = [&where](const boost::system::error_code& error) {
      return std::unexpected(Unavailable("listening on " + where + ": " + error.message()));
    };
    acceptor_.emplace(io);
    acceptor_->open(endpoint.protocol(), ec);
    if (ec) return failed(ec);
    acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return failed(ec);
    acceptor_->bind(endpoint, ec);
    if (ec) return failed(ec);
    acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return failed(ec);
    port_ = acceptor_->local_endpoint(ec).port();
    if (ec) return failed(ec);
    return Ok();
  }

  static void RunLoop(asio::io_context& io) {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("HTTPS I/O thread caught an exception: {}", e.what());
      } catch (...) {
        spdlog::error("HTTPS I/O thread caught a non-exception");
      }
    }
  }

  asio::awaitable<void> Accept() {
    size_t next = 0;
    for (;;) {
      asio::io_context& io = *io_contexts_[next++ % io_contexts_.size()];
      auto [ec, socket] =
          co_await acceptor_->async_accept(asio::any_io_executor(io.get_executor()), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
        spdlog::warn("accepting a connection on port {}: {}", port_, ec.message());
        // Out of descriptors (EMFILE): back off rather than spin on accept.
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await pause.async_wait(kTuple);
        continue;
      }
      try {
        StartConnection(std::move(socket));
      } catch (const std::exception& e) {
        spdlog::warn("starting a connection: {}", e.what());
      }
    }
  }

  void StartConnection(tcp::socket socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // Already gone.
    socket.set_option(tcp::no_delay(true), ec);
    std::shared_ptr<ServedConnection> connection;
    if (context_.tls != nullptr) {
      connection = std::make_shared<Connection<TlsStream>>(context_, std::move(socket),
                                                           remote.address().to_string());
    } else {
      connection = std::make_shared<Connection<PlainStream>>(context_, std::move(socket),
                                                             remote.address().to_string());
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (connections_.size() >= options_.limits.max_connections) {
        // Under a flood, one line per refused connection would flood the log as well.
        auto now = Clock::now();
        if (now - last_refusal_log_ >= std::chrono::seconds(10)) {
          last_refusal_log_ = now;
          spdlog::warn("refusing connections: limits.max_connections ({}) are open",
                       connections_.size());
        }
        return;
      }
      connections_.emplace(connection.get(), connection);
    }
    try {
      asio::co_spawn(
          connection->executor(), [connection] { return connection->Run(); },
          [this, connection](std::exception_ptr) { Unregister(connection.get()); });
    } catch (...) {
      Unregister(connection.get());
      throw;
    }
  }

  void Unregister(ServedConnection* connection) {
    std::lock_guard lock(mu_);
    connections_.erase(connection);
    if (connections_.empty()) cv_.notify_all();
  }

  // CloseAcceptor closes the listening socket on its own thread and waits, so a connect attempt
  // made after it is refused by the kernel.
  void CloseAcceptor() {
    if (!acceptor_) return;
    if (io_threads_.empty()) {
      boost::system::error_code ec;
      acceptor_->close(ec);
      return;
    }
    std::promise<void> closed;
    asio::post(*io_contexts_.front(), [this, &closed] {
      boost::system::error_code ec;
      acceptor_->close(ec);
      closed.set_value();
    });
    closed.get_future().wait();
  }

  ServerOptions options_;
  ServerContext context_;
  std::optional<asio::ssl::context> tls_;
  std::vector<std::unique_ptr<asio::io_context>> io_contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::thread_pool> handler_pool_;
  std::vector<std::thread> io_threads_;
  uint16_t port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;               // Guarded by mu_.
  Clock::time_point last_refusal_log_;  // Guarded by mu_.
  // connections_ owns every open connection; guarded by mu_.
  std::unordered_map<ServedConnection*, std::shared_ptr<ServedConnection>> connections_;
};

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const ServerOptions& options,
                                                        const ca::TlsIdentity& tls,
                                                        api::Handler& handler) {
  try {
    auto impl = std::make_unique<Impl>(options, handler);
    DEVID_TRY(impl->Init(&tls));
    return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
  } catch (const std::exception& e) {
    return std::unexpected(Internal(std::string("starting the HTTPS server: ") + e.what()));
  }
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::StartPlain(const ServerOptions& options,
                                                             api::Handler& handler) {
  try {
    auto impl = std::make_unique<Impl>(options, handler);
    DEVID_TRY(impl->Init(nullptr));
    return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
  } catch (const std::exception& e) {
    return std::unexpected(Internal(std::string("starting the HTTP server: ") + e.what()));
  }
}

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpsServer::~HttpsServer() { impl_->Shutdown(std::chrono::seconds(0)); }

uint16_t HttpsServer::port() const { return impl_->port(); }

void HttpsServer::Shutdown(std::chrono::seconds grace) { impl_->Shutdown(grace); }

}  // namespace devid::net
