// devid_register_load: a closed-loop load generator for the DPS device registration route and for
// EST enrollment.
//
// C workers each hold one kept-alive TLS connection and send the next precomputed request as soon
// as the previous response has arrived. In the default mode every request registers a distinct
// device of a symmetric-key enrollment group (protocol notes §1.2, §2.2). With
// --operation est-enroll every request is an EST simpleenroll (RFC 7030 §4.2.1) of an
// individually enrolled device: a P-256 PKCS #10 request with CN = the registration ID, authorized
// by the device's SAS token; --create-enrollments first creates those enrollments through the
// service API's bulk operation. All keys, requests, tokens and request bytes are built, and all
// connections opened and verified, before the clock starts, so the measured window holds only
// request/response exchanges. The same requests can be sent to any HTTPS server
// (--path-only-baseline) to measure the TLS and HTTP floor of the machine.
//
// It also mints a service SAS token from a connection string (--make-service-token), so scripts
// can call the service API with curl.

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/result.h"
#include "ossl/tls_context.h"
#include "ossl/base64.h"
#include "ossl/error.h"
#include "ossl/unique_ptr.h"
#include "pki/sas_token.h"

namespace devid::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;
using Clock = std::chrono::steady_clock;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kApiVersion = "2019-03-31";  // what the Node device SDK sends

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string server_name;  // "" = host
  std::string trust_bundle;
  std::string id_scope = "0ne00000000";
  std::string group_key;
  std::string id_prefix = "bench-";
  uint64_t id_stride = 1;  // device i is number i * id_stride, so a run can sample a larger set
  uint64_t devices = 50000;
  uint64_t count = 0;   // 0 = devices
  double duration = 0;  // seconds; 0 = none (count only)
  int concurrency = 64;
  int threads = 1;
  int timeout = 600;  // hard bound on the measured run, seconds
  int token_ttl = 3600;
  bool baseline = false;
  std::vector<int> cpu_pids;
  std::string json_out;
  std::string label;
  // "register" (DPS registration) or "est-enroll" (EST simpleenroll).
  std::string operation = "register";
  // est-enroll: create the individual enrollments first, with a service token for this
  // connection string.
  bool create_enrollments = false;
  std::string connection_string;
};

bool IsEst(const Options& o) { return o.operation == "est-enroll"; }

// Fail prints a one-line error and returns the exit code for usage and set-up failures.
int Fail(const std::string& message) {
  std::fprintf(stderr, "devid_register_load: %s\n", message.c_str());
  return 2;
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// RegistrationId is device i's registration ID: the prefix and i * id_stride zero-padded to the
// width of the largest number.
std::string RegistrationId(const Options& o, uint64_t i) {
  size_t width = std::to_string((o.devices - 1) * o.id_stride).size();
  std::string index = std::to_string(i * o.id_stride);
  return o.id_prefix + std::string(width - index.size(), '0') + index;
}

// EstCsrBase64 makes a fresh P-256 key and returns a PKCS #10 request for CN=common_name signed
// with it (ecdsa-with-SHA256), base64 DER as RFC 7030 §4.2.1 sends it.
Result<std::string> EstCsrBase64(const std::string& common_name) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  if (!key || !req) return std::unexpected(ossl::ErrorFromQueue("making a P-256 key"));
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return std::unexpected(ossl::ErrorFromQueue("signing a certificate request"));
  }
  unsigned char* der = nullptr;
  int length = i2d_X509_REQ(req.get(), &der);
  if (length <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding a certificate request"));
  std::string bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return ossl::Base64Encode(bytes);
}

// BuildEstRequests renders one simpleenroll request per device: its own fresh key's CSR and a SAS
// token signed with the device's individual enrollment key (derived from --group-key, so the
// enrollments can be created from the same input).
Result<std::vector<std::string>> BuildEstRequests(const Options& o) {
  std::vector<std::string> out;
  out.reserve(o.devices);
  int64_t expiry = UnixNow() + o.token_ttl;
  std::string host_header =
      (o.server_name.empty() ? o.host : o.server_name) + ":" + std::to_string(o.port);
  for (uint64_t i = 0; i < o.devices; ++i) {
    std::string reg_id = RegistrationId(o, i);
    DEVID_ASSIGN_OR_RETURN(std::string device_key, pki::DeriveSymmetricKey(o.group_key, reg_id));
    DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> key, ossl::Base64Decode(device_key));
    std::string token =
        pki::CreateSasToken(key, o.id_scope + "/registrations/" + reg_id, expiry, "registration");
    DEVID_ASSIGN_OR_RETURN(std::string body, EstCsrBase64(reg_id));
    std::string request;
    request.reserve(1024);
    request += "POST /.well-known/est/simpleenroll HTTP/1.1\r\n";
    request += "Host: " + host_header + "\r\n";
    request += "Content-Type: application/pkcs10\r\n";
    request += "Content-Transfer-Encoding: base64\r\n";
    request += "Authorization: " + token + "\r\n";
    request += "User-Agent: devid-register-load/1\r\n";
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    request += "Connection: keep-alive\r\n\r\n";
    request += body;
    out.push_back(std::move(request));
  }
  return out;
}

// BuildRequests renders every request's bytes: the headers the Node device SDK sends (protocol
// notes §1.2) with a device token signed by the key derived from the group key (§2.2).
Result<std::vector<std::string>> BuildRequests(const Options& o) {
  std::vector<std::string> out;
  out.reserve(o.devices);
  int64_t expiry = UnixNow() + o.token_ttl;
  std::string host_header =
      (o.server_name.empty() ? o.host : o.server_name) + ":" + std::to_string(o.port);
  for (uint64_t i = 0; i < o.devices; ++i) {
    std::string reg_id = RegistrationId(o, i);
    DEVID_ASSIGN_OR_RETURN(std::string device_key, pki::DeriveSymmetricKey(o.group_key, reg_id));
    DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> key, ossl::Base64Decode(device_key));
    std::string resource = o.id_scope + "/registrations/" + reg_id;
    std::string token = pki::CreateSasToken(key, resource, expiry, "registration");
    std::string body = "{\"registrationId\":\"" + reg_id + "\"}";
    std::string request;
    request.reserve(512);
    request +=
        "PUT /" + resource + "/register?api-version=" + std::string(kApiVersion) + " HTTP/1.1\r\n";
    request += "Host: " + host_header + "\r\n";
    request += "Accept: application/json\r\n";
    request += "Content-Type: application/json; charset=utf-8\r\n";
    request += "Authorization: " + token + "\r\n";
    request += "User-Agent: devid-register-load/1\r\n";
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    request += "Connection: keep-alive\r\n\r\n";
    request += body;
    out.push_back(std::move(request));
  }
  return out;
}

// ProcessCpuSeconds returns utime + stime of a process (all its threads) from /proc, or -1.
double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  // After "pid (comm) ", utime and stime are the 12th and 13th fields (proc(5): fields 14, 15).
  double ticks = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i == 12 || i == 13) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// MachineCpuSeconds returns the busy and total CPU time of the whole machine from /proc/stat
// (all cores, seconds), so a run can tell how much CPU other processes took from it.
std::pair<double, double> MachineCpuSeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double busy = 0, total = 0;
  in >> cpu;
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  for (int i = 0; i < 8; ++i) {
    double ticks = 0;
    if (!(in >> ticks)) break;
    total += ticks;
    if (i != 3 && i != 4) busy += ticks;
  }
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {busy / hz, total / hz};
}

double SelfCpuSeconds(bool user) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const timeval& t = user ? usage.ru_utime : usage.ru_stime;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// Shared is what all workers read; next is the only thing they change.
struct Shared {
  const std::vector<std::string>* requests = nullptr;
  uint64_t count = 0;
  std::optional<Clock::time_point> deadline;
  bool baseline = false;
  unsigned success_status = 202;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> aborted{false};
};

struct WorkerStats {
  std::vector<uint32_t> latency_us;
  std::map<std::string, uint64_t> statuses;  // "202", "401", "transport"
  uint64_t ok = 0;
  uint64_t reconnects = 0;
  Clock::time_point finished;
};

// Connector opens verified TLS connections to the server.
class Connector {
 public:
  Status Init(const Options& o) {
    auto bundle = ReadFile(o.trust_bundle);
    if (!bundle) return std::unexpected(bundle.error());
    tls_.emplace(asio::ssl::context::tls_client);
    DEVID_TRY(ossl::SetMinimumTls12(tls_->native_handle()));
    DEVID_TRY(ossl::TrustOnly(tls_->native_handle(), *bundle));
    name_ = o.server_name.empty() ? o.host : o.server_name;
    beast::error_code ec;
    auto address = asio::ip::make_address(o.host, ec);
    if (ec) return std::unexpected(InvalidArgument("--host must be an IP address: " + o.host));
    endpoint_ = tcp::endpoint(address, o.port);
    asio::ip::make_address(name_, ec);
    name_is_ip_ = !ec;
    return Ok();
  }

  // New returns an unconnected stream whose handshake will check the server's name.
  Result<std::unique_ptr<SslStream>> New(const asio::any_io_executor& executor) {
    auto stream = std::make_unique<SslStream>(executor, *tls_);
    SSL* ssl = stream->native_handle();
    // RFC 6066 §3: SNI carries DNS names only; the name check is OpenSSL's (RFC 6125).
    bool named = name_is_ip_
                     ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name_.c_str()) == 1
                     : SSL_set_tlsext_host_name(ssl, name_.c_str()) == 1 &&
                           SSL_set1_host(ssl, name_.c_str()) == 1;
    if (!named) {
      ERR_clear_error();
      return std::unexpected(InvalidArgument("cannot check the server name " + name_));
    }
    return stream;
  }

  // ConnectNow connects and handshakes synchronously (before the clock starts).
  Result<std::unique_ptr<SslStream>> ConnectNow(asio::io_context& io) {
    DEVID_ASSIGN_OR_RETURN(auto stream, New(io.get_executor()));
    beast::error_code ec;
    stream->next_layer().connect(endpoint_, ec);
    if (!ec) stream->next_layer().set_option(tcp::no_delay(true), ec);
    if (!ec) stream->handshake(asio::ssl::stream_base::client, ec);
    if (ec) return std::unexpected(HandshakeError(*stream, ec));
    return stream;
  }

  // Reconnect replaces a broken connection during the run.
  asio::awaitable<bool> Reconnect(std::unique_ptr<SslStream>& stream) {
    auto fresh = New(stream->get_executor());
    if (!fresh) co_return false;
    auto [ec] = co_await (*fresh)->next_layer().async_connect(endpoint_, kTuple);
    if (ec) co_return false;
    (*fresh)->next_layer().set_option(tcp::no_delay(true), ec);
    auto [hec] = co_await (*fresh)->async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      ERR_clear_error();
      co_return false;
    }
    stream = std::move(*fresh);
    co_return true;
  }

  const std::string& name() const { return name_; }

 private:
  static Result<std::string> ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::unexpected(InvalidArgument("reading the trust bundle " + path));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  Error HandshakeError(SslStream& stream, const beast::error_code& ec) {
    long verify = SSL_get_verify_result(stream.native_handle());
    ERR_clear_error();
    std::string where =
        "connecting to " + endpoint_.address().to_string() + ":" + std::to_string(endpoint_.port());
    if (verify != X509_V_OK) {
      return Unauthenticated(
          where + ": server certificate rejected: " + X509_verify_cert_error_string(verify));
    }
    return Unavailable(where + ": " + ec.message());
  }

  std::optional<asio::ssl::context> tls_;
  tcp::endpoint endpoint_;
  std::string name_;
  bool name_is_ip_ = false;
};

// Worker sends requests on its connection until the count or the deadline is reached.
asio::awaitable<void> Worker(Shared& shared, Connector& connector,
                             std::unique_ptr<SslStream>& stream, WorkerStats& stats) {
  beast::flat_buffer buffer;
  const auto& requests = *shared.requests;
  for (;;) {
    if (shared.aborted.load(std::memory_order_relaxed)) break;
    if (shared.deadline && Clock::now() >= *shared.deadline) break;
    uint64_t i = shared.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= shared.count) break;
    const std::string& request = requests[i % requests.size()];

    auto start = Clock::now();
    auto [wec, written] = co_await asio::async_write(*stream, asio::buffer(request), kTuple);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    beast::error_code rec;
    if (!wec) {
      auto [ec, n] = co_await http::async_read(*stream, buffer, parser, kTuple);
      rec = ec;
    }
    auto end = Clock::now();
    stats.latency_us.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));

    bool reconnect = false;
    if (wec || rec) {
      ++stats.statuses["transport"];
      reconnect = true;
    } else {
      unsigned status = parser.get().result_int();
      ++stats.statuses[std::to_string(status)];
      // devid answers a durable registration 202 (protocol notes §1.3) and an issued EST
      // certificate 200 (RFC 7030 §4.2.3); the baseline takes any 2xx.
      bool ok = shared.baseline ? status / 100 == 2 : status == shared.success_status;
      if (ok) ++stats.ok;
      reconnect = !parser.get().keep_alive();
    }
    if (reconnect) {
      if (shared.aborted.load(std::memory_order_relaxed)) break;
      buffer.clear();
      ++stats.reconnects;
      if (!co_await connector.Reconnect(stream)) {
        ++stats.statuses["connect"];
        break;
      }
    }
  }
  stats.finished = Clock::now();
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

// Summarize computes nearest-rank percentiles in milliseconds.
Percentiles Summarize(std::vector<uint32_t>& us) {
  Percentiles p;
  if (us.empty()) return p;
  std::sort(us.begin(), us.end());
  auto rank = [&us](double q) {
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(us.size())));
    return static_cast<double>(us[std::min(us.size(), std::max<size_t>(k, 1)) - 1]) / 1000.0;
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.max = static_cast<double>(us.back()) / 1000.0;
  double sum = 0;
  for (uint32_t v : us) sum += v;
  p.mean = sum / static_cast<double>(us.size()) / 1000.0;
  return p;
}

std::string Fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", v);
  return text;
}

double Round(double v, int digits) {
  double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

// ServiceToken mints a service SAS token for the connection string's policy (sr = HostName).
Result<std::string> ServiceToken(const std::string& connection_string, int ttl) {
  std::map<std::string, std::string> fields;
  std::string_view rest = connection_string;
  while (!rest.empty()) {
    size_t semicolon = rest.find(';');
    std::string_view part = rest.substr(0, semicolon);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos) {
      fields[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
    }
    rest = semicolon == std::string_view::npos ? "" : rest.substr(semicolon + 1);
  }
  for (const char* name : {"HostName", "SharedAccessKeyName", "SharedAccessKey"}) {
    if (fields[name].empty()) {
      return std::unexpected(InvalidArgument(std::string("the connection string has no ") + name));
    }
  }
  auto key = ossl::Base64Decode(fields["SharedAccessKey"]);
  if (!key) {
    return std::unexpected(
        InvalidArgument("the connection string's SharedAccessKey is not base64"));
  }
  return pki::CreateSasToken(*key, fields["HostName"], UnixNow() + ttl,
                             fields["SharedAccessKeyName"]);
}

// CreateEnrollments creates the individual symmetric-key enrollments of devices 0..devices-1 with
// the service API's bulk create (POST /enrollments), several batches at once on separate
// connections, each batch under the server's 96 KiB body limit. Fails on any refused item.
Status CreateEnrollments(const Options& o, Connector& connector) {
  DEVID_ASSIGN_OR_RETURN(std::string token, ServiceToken(o.connection_string, o.token_ttl));
  constexpr uint64_t kBatch = 250;
  uint64_t batches = (o.devices + kBatch - 1) / kBatch;
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  std::optional<Error> failure;
  auto work = [&] {
    asio::io_context io(1);
    auto stream = connector.ConnectNow(io);
    if (!stream) {
      std::lock_guard lock(mu);
      failure = stream.error();
      return;
    }
    beast::flat_buffer buffer;
    for (uint64_t b = next++; b < batches; b = next++) {
      nlohmann::json items = nlohmann::json::array();
      for (uint64_t i = b * kBatch; i < std::min(o.devices, (b + 1) * kBatch); ++i) {
        std::string reg_id = RegistrationId(o, i);
        auto key = pki::DeriveSymmetricKey(o.group_key, reg_id);
        if (!key) {
          std::lock_guard lock(mu);
          failure = key.error();
          return;
        }
        items.push_back({{"registrationId", reg_id},
                         {"attestation",
                          {{"type", "symmetricKey"},
                           {"symmetricKey", {{"primaryKey", *key}, {"secondaryKey", *key}}}}}});
      }
      http::request<http::string_body> request{http::verb::post,
                                               "/enrollments?api-version=2021-10-01", 11};
      request.set(http::field::host, connector.name() + ":" + std::to_string(o.port));
      request.set(http::field::authorization, token);
      request.set(http::field::content_type, "application/json");
      request.body() = nlohmann::json{{"mode", "create"}, {"enrollments", items}}.dump();
      request.prepare_payload();
      http::response<http::string_body> response;
      beast::error_code ec;
      http::write(**stream, request, ec);
      if (!ec) http::read(**stream, buffer, response, ec);
      std::string refused;
      if (ec) {
        refused = ec.message();
      } else if (response.result_int() != 200 ||
                 !nlohmann::json::parse(response.body(), nullptr, false)
                      .value("isSuccessful", false)) {
        refused =
            "HTTP " + std::to_string(response.result_int()) + ": " + response.body().substr(0, 300);
      }
      if (!refused.empty()) {
        std::lock_guard lock(mu);
        failure = Unavailable("creating enrollments: " + refused);
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < std::min<uint64_t>(batches, 8); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (failure) return std::unexpected(*failure);
  return Ok();
}

int RunLoad(Options o) {
  if (o.port == 0) return Fail("--port is required");
  if (o.trust_bundle.empty()) return Fail("--trust-bundle is required");
  if (o.group_key.empty()) return Fail("--group-key is required");
  if (o.devices == 0 || o.concurrency < 1 || o.threads < 1 || o.threads > 2) {
    return Fail("--devices and --concurrency must be positive and --threads 1 or 2");
  }
  if (o.operation != "register" && o.operation != "est-enroll") {
    return Fail("--operation must be register or est-enroll");
  }
  if (o.create_enrollments && (!IsEst(o) || o.connection_string.empty())) {
    return Fail("--create-enrollments needs --operation est-enroll and --connection-string");
  }
  if (o.count == 0) o.count = o.duration > 0 ? UINT64_MAX : o.devices;

  Connector connector;
  if (auto s = connector.Init(o); !s) return Fail(s.error().message());

  double enroll_seconds = 0;
  if (o.create_enrollments) {
    auto started = Clock::now();
    if (auto s = CreateEnrollments(o, connector); !s) return Fail(s.error().message());
    enroll_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  }
  auto built_at = Clock::now();
  auto requests = IsEst(o) ? BuildEstRequests(o) : BuildRequests(o);
  if (!requests) return Fail("building requests: " + requests.error().message());
  double build_seconds = std::chrono::duration<double>(Clock::now() - built_at).count();

  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int t = 0; t < o.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  std::vector<std::unique_ptr<SslStream>> streams(static_cast<size_t>(o.concurrency));
  for (int w = 0; w < o.concurrency; ++w) {
    auto stream = connector.ConnectNow(*ios[static_cast<size_t>(w % o.threads)]);
    if (!stream) return Fail(stream.error().message());
    streams[static_cast<size_t>(w)] = std::move(*stream);
  }
  SSL* first = streams.front()->native_handle();
  std::string tls_version = SSL_get_version(first);
  std::string tls_cipher = SSL_get_cipher_name(first);

  Shared shared;
  shared.requests = &*requests;
  shared.count = o.count;
  shared.baseline = o.baseline;
  shared.success_status = IsEst(o) ? 200 : 202;
  std::vector<WorkerStats> stats(static_cast<size_t>(o.concurrency));
  for (auto& s : stats)
    s.latency_us.reserve(static_cast<size_t>(
        std::min<uint64_t>(o.count, o.devices) / static_cast<uint64_t>(o.concurrency) * 2 + 16));

  // The watchdog bounds the run: when it fires every connection is closed and workers stop.
  std::vector<std::unique_ptr<asio::steady_timer>> watchdogs;
  for (int t = 0; t < o.threads; ++t) {
    auto& io = *ios[static_cast<size_t>(t)];
    watchdogs.push_back(std::make_unique<asio::steady_timer>(io));
    watchdogs.back()->expires_after(std::chrono::seconds(o.timeout));
    watchdogs.back()->async_wait([&shared, &streams, &o, t](const beast::error_code& ec) {
      if (ec) return;
      shared.aborted = true;
      for (size_t w = static_cast<size_t>(t); w < streams.size();
           w += static_cast<size_t>(o.threads)) {
        beast::error_code ignored;
        streams[w]->next_layer().close(ignored);
      }
    });
  }
  // running counts each thread's live workers; the last one cancels its thread's watchdog so
  // that thread's loop runs out of work. Each counter is touched only by its own thread.
  std::vector<int> running(static_cast<size_t>(o.threads), 0);
  for (int w = 0; w < o.concurrency; ++w) {
    size_t index = static_cast<size_t>(w);
    size_t t = index % static_cast<size_t>(o.threads);
    ++running[t];
    asio::co_spawn(*ios[t], Worker(shared, connector, streams[index], stats[index]),
                   [&running, &watchdogs, t](std::exception_ptr) {
                     if (--running[t] == 0) watchdogs[t]->cancel();
                   });
  }

  std::map<int, double> cpu_before;
  for (int pid : o.cpu_pids) cpu_before[pid] = ProcessCpuSeconds(pid);
  double user_before = SelfCpuSeconds(true), sys_before = SelfCpuSeconds(false);
  auto machine_before = MachineCpuSeconds();
  auto start = Clock::now();
  if (o.duration > 0) {
    shared.deadline = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.duration));
  }
  std::vector<std::thread> threads;
  for (int t = 1; t < o.threads; ++t) {
    threads.emplace_back([io = ios[static_cast<size_t>(t)].get()] { io->run(); });
  }
  ios.front()->run();
  for (auto& t : threads) t.join();
  Clock::time_point end = start;
  for (const auto& s : stats) end = std::max(end, s.finished);
  double user = SelfCpuSeconds(true) - user_before, sys = SelfCpuSeconds(false) - sys_before;
  double server_cpu = 0;
  for (int pid : o.cpu_pids) server_cpu += ProcessCpuSeconds(pid) - cpu_before[pid];
  auto machine_after = MachineCpuSeconds();
  double machine_busy = machine_after.first - machine_before.first;
  double machine_total = machine_after.second - machine_before.second;
  // What neither this process nor the --cpu-pid processes used: other load on the machine.
  double other_cpu = std::max(0.0, machine_busy - user - sys - server_cpu);

  std::vector<uint32_t> latency;
  std::map<std::string, uint64_t> statuses;
  uint64_t ok = 0, reconnects = 0;
  for (auto& s : stats) {
    latency.insert(latency.end(), s.latency_us.begin(), s.latency_us.end());
    for (const auto& [k, v] : s.statuses) statuses[k] += v;
    ok += s.ok;
    reconnects += s.reconnects;
  }
  uint64_t total = latency.size();
  std::map<std::string, uint64_t> errors;
  for (const auto& [k, v] : statuses) {
    bool is_ok =
        o.baseline ? (k.size() == 3 && k[0] == '2') : k == std::to_string(shared.success_status);
    if (!is_ok) errors[k] = v;
  }
  double elapsed = std::chrono::duration<double>(end - start).count();
  Percentiles p = Summarize(latency);
  double rps = elapsed > 0 ? static_cast<double>(ok) / elapsed : 0;

  nlohmann::json out = {
      {"label", o.label},
      {"mode", o.baseline ? "baseline" : o.operation},
      {"target", o.host + ":" + std::to_string(o.port)},
      {"tls",
       {{"version", tls_version}, {"cipher", tls_cipher}, {"verified_name", connector.name()}}},
      {"devices", o.devices},
      {"concurrency", o.concurrency},
      {"threads", o.threads},
      {"requests", total},
      {"ok", ok},
      {"statuses", statuses},
      {"errors", errors},
      {"reconnects", reconnects},
      {"aborted_by_timeout", shared.aborted.load()},
      {"elapsed_s", Round(elapsed, 3)},
      {"ok_per_s", Round(rps, 1)},
      {"latency_ms",
       {{"p50", Round(p.p50, 3)},
        {"p90", Round(p.p90, 3)},
        {"p99", Round(p.p99, 3)},
        {"max", Round(p.max, 3)},
        {"mean", Round(p.mean, 3)}}},
      {"client_cpu_s", {{"user", Round(user, 2)}, {"sys", Round(sys, 2)}}},
      {"machine_cpu_s",
       {{"busy", Round(machine_busy, 2)},
        {"total", Round(machine_total, 2)},
        {"other_processes", Round(other_cpu, 2)}}},
      {"precompute_s", Round(build_seconds, 2)},
  };
  if (o.create_enrollments) out["create_enrollments_s"] = Round(enroll_seconds, 2);
  if (!o.cpu_pids.empty()) out["server_cpu_s"] = Round(server_cpu, 2);

  if (!o.json_out.empty()) {
    std::ofstream file(o.json_out);
    file << out.dump(2) << "\n";
    if (!file) return Fail("writing " + o.json_out);
  }
  std::printf(
      "%s%s: %llu requests, %llu ok, errors %s, %.2f s, %.0f %s/s, latency ms p50 %.2f "
      "p90 %.2f p99 %.2f max %.2f, cpu s: client %.2f%s, other processes %.2f\n",
      o.label.empty() ? "" : (o.label + " ").c_str(), o.baseline ? "baseline" : o.operation.c_str(),
      static_cast<unsigned long long>(total), static_cast<unsigned long long>(ok),
      nlohmann::json(errors).dump().c_str(), elapsed, rps,
      o.baseline ? "req" : (IsEst(o) ? "certificates" : "registrations"), p.p50, p.p90, p.p99,
      p.max, user + sys, o.cpu_pids.empty() ? "" : (", server " + Fixed(server_cpu)).c_str(),
      other_cpu);
  std::printf("%s\n", out.dump().c_str());
  if (shared.aborted) return 3;
  return errors.empty() && ok > 0 ? 0 : 1;
}

// MakeServiceToken prints a service SAS token for the connection string's policy (sr = HostName).
int MakeServiceToken(const std::string& connection_string, int ttl) {
  auto token = ServiceToken(connection_string, ttl);
  if (!token) return Fail(token.error().message());
  std::printf("%s\n", token->c_str());
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  bool make_token = false;
  CLI::App app{"devid_register_load: HTTPS load generator for DPS registration and EST enrollment"};
  app.add_option("--host", o.host, "server IP address");
  app.add_option("--port", o.port, "server port");
  app.add_option("--server-name", o.server_name,
                 "name the certificate must match (default: --host)");
  app.add_option("--trust-bundle", o.trust_bundle, "PEM file of the only trusted roots");
  app.add_option("--id-scope", o.id_scope, "DPS ID scope");
  app.add_option("--group-key", o.group_key,
                 "base64 enrollment group primary key (est-enroll: device keys derive from it)");
  app.add_option("--operation", o.operation, "register (DPS) or est-enroll (EST simpleenroll)");
  app.add_flag("--create-enrollments", o.create_enrollments,
               "est-enroll: first create the devices' individual enrollments (service API bulk)");
  app.add_option("--id-prefix", o.id_prefix, "registration ID prefix");
  app.add_option("--id-stride", o.id_stride,
                 "device i is number i * stride (registers every stride-th of a loaded set)")
      ->check(CLI::PositiveNumber);
  app.add_option("--devices", o.devices, "distinct devices (requests precomputed)");
  app.add_option("--count", o.count,
                 "requests to send (default: --devices, or unbounded "
                 "with --duration); devices repeat past --devices");
  app.add_option("--duration", o.duration, "stop sending after this many seconds");
  app.add_option("--concurrency", o.concurrency, "workers, one connection each");
  app.add_option("--threads", o.threads, "event-loop threads (1 or 2)");
  app.add_option("--timeout", o.timeout, "hard limit on the measured run, seconds");
  app.add_option("--token-ttl", o.token_ttl, "SAS token lifetime, seconds");
  app.add_flag("--path-only-baseline", o.baseline,
               "send the same requests to a baseline server; any 2xx counts");
  app.add_option("--cpu-pid", o.cpu_pids, "process whose CPU time to report (repeatable)");
  app.add_option("--json-out", o.json_out, "also write the JSON result here");
  app.add_option("--label", o.label, "name of this run in the output");
  app.add_flag("--make-service-token", make_token,
               "print a service SAS token for --connection-string and exit");
  app.add_option("--connection-string", o.connection_string, "service connection string");
  CLI11_PARSE(app, argc, argv);
  if (make_token) return MakeServiceToken(o.connection_string, o.token_ttl);
  return RunLoad(std::move(o));
}

}  // namespace
}  // namespace devid::bench

int main(int argc, char** argv) {
  try {
    return devid::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "devid_register_load: %s\n", e.what());
    return 2;
  }
}
