// devid_x509_load: a closed-loop load generator for X.509 device requests over mutual TLS, where
// every request opens a new TCP connection and does a full TLS handshake with a client
// certificate chain (leaf + intermediate), sends one HTTP/1.1 request with "Connection: close"
// and reads the answer to its end. With --resume, each worker offers the session of its previous
// connection (TLS 1.3 tickets), so handshakes are resumptions when the server accepts them.
//
// Modes:
//   status    GET --path with the one device certificate --cert/--key (operation status).
//   register  PUT /{scope}/registrations/{id}/register, one distinct device per request: leaves
//             with CN = --id-prefix + index are minted before the clock starts, signed by
//             --issuer-cert/--issuer-key (ECDSA P-256, clientAuth), and sent with the issuer.
//   token     POST /tokens {"audience", "scope"} with the device certificate --cert/--key, each
//             worker on one kept-alive connection (a handshake per worker, not per request):
//             the token authority's issuance rate (bench/tokens.sh). With --authorization (a
//             device's SAS token) instead of --cert/--key, the same over server-only TLS: the
//             symmetric devices' tokens, with a sealed session key.
// The same requests can be sent to any HTTPS server that asks for client certificates (nginx
// with ssl_verify_client on), for a same-run baseline. Prints one JSON line.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string server_name = "localhost";
  std::string trust_bundle;
  std::string mode = "status";
  std::string path;  // status: the request target
  std::string cert, key;  // status: the device's chain (leaf first) and key
  std::string issuer_cert, issuer_key;  // register: the intermediate that signs minted leaves
  std::string id_scope;
  std::string id_prefix = "x509-bench-";
  int devices = 2000;
  int concurrency = 4;
  double duration = 10;
  bool resume = false;
  std::string audience, scope;  // token
  std::string authorization;    // token: a SAS token instead of a client certificate
  std::string label;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "devid_x509_load: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

struct Device {
  std::string id;
  X509* leaf = nullptr;
  EVP_PKEY* key = nullptr;
  std::string request;
};

X509* ReadCertificate(const std::string& path, STACK_OF(X509)* rest = nullptr) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) Die("cannot read " + path);
  X509* first = PEM_read_X509(f, nullptr, nullptr, nullptr);
  while (rest != nullptr) {
    X509* next = PEM_read_X509(f, nullptr, nullptr, nullptr);
    if (next == nullptr) break;
    sk_X509_push(rest, next);
  }
  ERR_clear_error();
  std::fclose(f);
  if (first == nullptr) Die("no certificate in " + path);
  return first;
}

EVP_PKEY* ReadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) Die("cannot read " + path);
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (key == nullptr) Die("no key in " + path);
  return key;
}

void AddExtension(X509* certificate, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (extension == nullptr || X509_add_ext(certificate, extension, -1) != 1) Die("extension");
  X509_EXTENSION_free(extension);
}

// MintLeaf makes a P-256 device certificate for id signed by issuer, valid for a day.
Device MintLeaf(const std::string& id, X509* issuer, EVP_PKEY* issuer_key) {
  Device device;
  device.id = id;
  device.key = EVP_EC_gen("P-256");
  X509* leaf = X509_new();
  X509_set_version(leaf, X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(leaf));
  BN_free(bn);
  X509_NAME* name = X509_get_subject_name(leaf);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(id.c_str()), -1, -1, 0);
  X509_set_issuer_name(leaf, X509_get_subject_name(issuer));
  X509_gmtime_adj(X509_getm_notBefore(leaf), -3600);
  X509_gmtime_adj(X509_getm_notAfter(leaf), 86400);
  X509_set_pubkey(leaf, device.key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, leaf, nullptr, nullptr, 0);
  AddExtension(leaf, &ctx, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(leaf, &ctx, NID_key_usage, "critical,digitalSignature");
  AddExtension(leaf, &ctx, NID_ext_key_usage, "clientAuth");
  AddExtension(leaf, &ctx, NID_subject_key_identifier, "hash");
  AddExtension(leaf, &ctx, NID_authority_key_identifier, "keyid");
  if (X509_sign(leaf, issuer_key, EVP_sha256()) == 0) Die("signing a leaf");
  device.leaf = leaf;
  return device;
}

std::string Request(const std::string& method, const std::string& target,
                    const std::string& body, bool keep_alive = false,
                    const std::string& authorization = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: devid_x509_load\r\n" +
         (authorization.empty() ? "" : "Authorization: " + authorization + "\r\n") +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n" + body;
}

struct Totals {
  std::atomic<long> ok{0};
  std::atomic<long> failed{0};
  std::atomic<long> resumed{0};
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::string first_error;
};

// Exchange does one request on a new connection; returns the HTTP status (0 on a failure).
int Exchange(SSL_CTX* ctx, const sockaddr_in& address, const Device& device, X509* issuer,
             SSL_SESSION** session, bool& resumed, std::string& error) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    error = "connect failed";
    ::close(fd);
    return 0;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_use_certificate(ssl, device.leaf);
  SSL_use_PrivateKey(ssl, device.key);
  SSL_add1_chain_cert(ssl, issuer);
  if (*session != nullptr) SSL_set_session(ssl, *session);
  int status = 0;
  if (SSL_connect(ssl) != 1) {
    char text[256];
    ERR_error_string_n(ERR_get_error(), text, sizeof(text));
    error = std::string("handshake: ") + text;
  } else if (SSL_write(ssl, device.request.data(), static_cast<int>(device.request.size())) <= 0) {
    error = "write failed";
  } else {
    std::string answer;
    char buffer[4096];
    int n = 0;
    while ((n = SSL_read(ssl, buffer, sizeof(buffer))) > 0) answer.append(buffer, n);
    if (answer.starts_with("HTTP/1.1 ")) status = std::atoi(answer.c_str() + 9);
    if (status != 200 && status != 202) {
      error = answer.substr(0, 600);
    }
    resumed = SSL_session_reused(ssl) == 1;
    if (SSL_SESSION* next = SSL_get1_session(ssl); next != nullptr) {
      if (*session != nullptr) SSL_SESSION_free(*session);
      *session = next;
    }
  }
  ERR_clear_error();
  SSL_shutdown(ssl);
  SSL_free(ssl);
  ::close(fd);
  return status;
}

// KeptAlive is one worker's mutual-TLS connection, opened on first use and reused for every
// request until an exchange fails.
class KeptAlive {
 public:
  ~KeptAlive() { Close(); }

  // Exchange sends device.request and reads one answer (headers and Content-Length body); returns
  // the HTTP status (0 on a failure, after which the next call reconnects).
  int Exchange(SSL_CTX* ctx, const sockaddr_in& address, const Device& device, X509* issuer,
               std::string& error) {
    if (ssl_ == nullptr && !Connect(ctx, address, device, issuer, error)) return 0;
    if (SSL_write(ssl_, device.request.data(), static_cast<int>(device.request.size())) <= 0) {
      return Failed("write failed", error);
    }
    std::string answer;
    size_t body_start = std::string::npos;
    size_t length = 0;
    char buffer[16384];
    while (body_start == std::string::npos || answer.size() < body_start + length) {
      int n = SSL_read(ssl_, buffer, sizeof(buffer));
      if (n <= 0) return Failed("connection closed mid-answer", error);
      answer.append(buffer, static_cast<size_t>(n));
      if (body_start == std::string::npos) {
        size_t end = answer.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        body_start = end + 4;
        std::string headers = answer.substr(0, end);
        std::transform(headers.begin(), headers.end(), headers.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        size_t field = headers.find("\r\ncontent-length:");
        length = field == std::string::npos ? 0 : std::strtoul(headers.c_str() + field + 17,
                                                               nullptr, 10);
      }
    }
    int status = answer.starts_with("HTTP/1.1 ") ? std::atoi(answer.c_str() + 9) : 0;
    if (status != 200) error = answer.substr(0, 600);
    return status;
  }

 private:
  bool Connect(SSL_CTX* ctx, const sockaddr_in& address, const Device& device, X509* issuer,
               std::string& error) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      Failed("connect failed", error);
      return false;
    }
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    if (device.leaf != nullptr) {
      SSL_use_certificate(ssl_, device.leaf);
      SSL_use_PrivateKey(ssl_, device.key);
      if (issuer != nullptr) SSL_add1_chain_cert(ssl_, issuer);
    }
    if (SSL_connect(ssl_) != 1) {
      char text[256];
      ERR_error_string_n(ERR_get_error(), text, sizeof(text));
      Failed(std::string("handshake: ") + text, error);
      return false;
    }
    return true;
  }

  int Failed(const std::string& what, std::string& error) {
    error = what;
    ERR_clear_error();
    Close();
    return 0;
  }

  void Close() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"X.509 mutual-TLS load: a new connection and handshake per request"};
  app.add_option("--host", o.host, "server IPv4 address");
  app.add_option("--port", o.port, "server port")->required();
  app.add_option("--trust-bundle", o.trust_bundle, "PEM roots the server must chain to")
      ->required();
  app.add_option("--mode", o.mode, "status, register or token");
  app.add_option("--path", o.path, "status: the request target");
  app.add_option("--cert", o.cert, "status, token: device chain PEM, leaf first");
  app.add_option("--key", o.key, "status, token: device key PEM");
  app.add_option("--audience", o.audience, "token: the peer device or service");
  app.add_option("--scope", o.scope, "token: the scope asked for");
  app.add_option("--authorization", o.authorization,
                 "token: the device's SAS token, sent instead of a client certificate");
  app.add_option("--issuer-cert", o.issuer_cert, "register: intermediate CA certificate PEM");
  app.add_option("--issuer-key", o.issuer_key, "register: intermediate CA key PEM");
  app.add_option("--id-scope", o.id_scope, "register: DPS ID scope");
  app.add_option("--id-prefix", o.id_prefix, "register: registration ID prefix");
  app.add_option("--devices", o.devices, "register: devices minted (the most requests sent)");
  app.add_option("--concurrency", o.concurrency, "workers, one connection at a time each");
  app.add_option("--duration", o.duration, "seconds to send for");
  app.add_flag("--resume", o.resume, "offer the previous connection's TLS session");
  app.add_option("--label", o.label, "name of this run in the output");
  CLI11_PARSE(app, argc, argv);

  std::vector<Device> devices;
  X509* issuer = nullptr;
  if (o.mode == "status") {
    STACK_OF(X509)* rest = sk_X509_new_null();
    Device device;
    device.leaf = ReadCertificate(o.cert, rest);
    device.key = ReadKey(o.key);
    if (sk_X509_num(rest) < 1) Die("--cert must hold the leaf and its issuer");
    issuer = sk_X509_value(rest, 0);
    device.request = Request("GET", o.path, "");
    devices.push_back(device);
  } else if (o.mode == "register") {
    issuer = ReadCertificate(o.issuer_cert);
    EVP_PKEY* issuer_key = ReadKey(o.issuer_key);
    for (int i = 0; i < o.devices; ++i) {
      Device device = MintLeaf(o.id_prefix + std::to_string(i), issuer, issuer_key);
      device.request = Request("PUT",
                               "/" + o.id_scope + "/registrations/" + device.id +
                                   "/register?api-version=2019-03-31",
                               "{\"registrationId\":\"" + device.id + "\"}");
      devices.push_back(std::move(device));
    }
  } else if (o.mode == "token") {
    Device device;
    if (o.authorization.empty()) {
      STACK_OF(X509)* rest = sk_X509_new_null();
      device.leaf = ReadCertificate(o.cert, rest);
      device.key = ReadKey(o.key);
      if (sk_X509_num(rest) > 0) issuer = sk_X509_value(rest, 0);
    }
    device.request = Request("POST", "/tokens",
                             nlohmann::json{{"audience", o.audience}, {"scope", o.scope}}.dump(),
                             /*keep_alive=*/true, o.authorization);
    devices.push_back(device);
  } else {
    Die("--mode must be status, register or token");
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_load_verify_locations(ctx, o.trust_bundle.c_str(), nullptr) != 1) {
    Die("loading " + o.trust_bundle);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &address.sin_addr) != 1) Die("--host is not IPv4");

  Totals totals;
  std::atomic<size_t> next_device{0};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(o.duration);
  std::vector<std::thread> workers;
  for (int w = 0; w < o.concurrency; ++w) {
    workers.emplace_back([&] {
      SSL_SESSION* session = nullptr;
      KeptAlive connection;
      std::vector<double> latencies;
      while (std::chrono::steady_clock::now() < deadline) {
        size_t index = 0;
        if (o.mode == "register") {
          index = next_device++;
          if (index >= devices.size()) break;
        }
        auto sent = std::chrono::steady_clock::now();
        bool resumed = false;
        std::string error;
        int status = o.mode == "token"
                         ? connection.Exchange(ctx, address, devices[index], issuer, error)
                         : Exchange(ctx, address, devices[index], issuer, &session, resumed, error);
        if (!o.resume && session != nullptr) {
          SSL_SESSION_free(session);
          session = nullptr;
        }
        latencies.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent)
                .count());
        if (status == 200 || status == 202) {
          ++totals.ok;
          if (resumed) ++totals.resumed;
        } else {
          ++totals.failed;
          std::lock_guard lock(totals.mutex);
          if (totals.first_error.empty()) totals.first_error = error;
        }
      }
      if (session != nullptr) SSL_SESSION_free(session);
      std::lock_guard lock(totals.mutex);
      totals.latencies_ms.insert(totals.latencies_ms.end(), latencies.begin(), latencies.end());
    });
  }
  for (auto& worker : workers) worker.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(totals.latencies_ms.begin(), totals.latencies_ms.end());
  auto percentile = [&](double p) {
    if (totals.latencies_ms.empty()) return 0.0;
    return totals.latencies_ms[std::min(totals.latencies_ms.size() - 1,
                                        static_cast<size_t>(p * totals.latencies_ms.size()))];
  };
  nlohmann::json result = {
      {"label", o.label},
      {"mode", o.mode},
      {"resume", o.resume},
      {"concurrency", o.concurrency},
      {"ok", totals.ok.load()},
      {"failed", totals.failed.load()},
      {"resumed", totals.resumed.load()},
      {"elapsed_s", elapsed},
      {"ok_per_s", totals.ok.load() / elapsed},
      {"latency_ms", {{"p50", percentile(0.5)}, {"p99", percentile(0.99)}}},
      {"first_error", totals.first_error},
  };
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
