#include "net/http_get.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>

namespace devid::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return std::unexpected(InvalidArgument("\"" + std::string(url) + "\" is not an http:// URL"));
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos || authority.empty()) {
    return std::unexpected(InvalidArgument("\"" + std::string(url) + "\" has no usable host"));
  }
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    out.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  }
  if (authority.starts_with('[') && authority.ends_with(']')) {
    authority = authority.substr(1, authority.size() - 2);
  }
  out.host = std::string(authority);
  if (out.host.empty() || out.port.empty()) {
    return std::unexpected(InvalidArgument("\"" + std::string(url) + "\" has no usable host"));
  }
  return out;
}

}  // namespace

Result<std::string> HttpGet(std::string_view url, const HttpGetOptions& options) {
  DEVID_ASSIGN_OR_RETURN(HttpUrl parsed, ParseHttpUrl(url));
  const std::string doing = "fetching " + std::string(url) + ": ";
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    tcp::resolver resolver(io);
    beast::error_code ec;
    // One deadline for the whole exchange, so a slow server cannot hold the caller longer.
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    auto results = resolver.resolve(parsed.host, parsed.port, ec);
    if (ec) return std::unexpected(Unavailable(doing + "resolving: " + ec.message()));
    stream.expires_at(deadline);
    stream.connect(results, ec);
    if (ec) return std::unexpected(Unavailable(doing + "connecting: " + ec.message()));
    http::request<http::empty_body> request(http::verb::get, parsed.target, 11);
    request.set(http::field::host, parsed.host);
    request.set(http::field::user_agent, "devid");
    request.set(http::field::connection, "close");
    stream.expires_at(deadline);
    http::write(stream, request, ec);
    if (ec) return std::unexpected(Unavailable(doing + "sending: " + ec.message()));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.body_limit);
    stream.expires_at(deadline);
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      return std::unexpected(ResourceExhausted(doing + "the answer is larger than " +
                                               std::to_string(options.body_limit) + " bytes"));
    }
    if (ec) return std::unexpected(Unavailable(doing + "reading: " + ec.message()));
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    auto response = parser.release();
    if (response.result_int() != 200) {
      return std::unexpected(
          Unavailable(doing + "HTTP status " + std::to_string(response.result_int())));
    }
    return std::move(response.body());
  } catch (const std::exception& e) {
    return std::unexpected(Unavailable(doing + e.what()));
  }
}

}  // namespace devid::net
