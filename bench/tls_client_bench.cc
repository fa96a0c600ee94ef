// devid_tls_client_bench: full TLS client handshakes per second through the device SDK's
// HttpsClient with a client certificate whose key is a keys::Key: a `file:` key signs in process,
// a `pkcs11:` key signs CertificateVerify inside the token (keys::OpenSslSigningKey). Each
// operation is one Connect (a new connection and a new TLS context, so no session resumption) and
// one GET /, whose answer shows the server accepted the certificate. bench/sdk.sh runs it against
// `openssl s_server -Verify 1 -www`.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/file.h"
#include "driver.h"
#include "key_stores.h"
#include "keys/key_store.h"
#include "sdk/https_client.h"

namespace devid::bench {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "devid_tls_client_bench: %s\n", message.c_str());
  return 2;
}

int Main(int argc, char** argv) {
  std::string host = "127.0.0.1", server_name, trust_bundle, cert, key_uri, module, label, json_out;
  int port = 0;
  int threads = 1;
  double seconds = 3;
  CLI::App app{"devid_tls_client_bench: TLS client handshakes per second with a store's key"};
  app.add_option("--host", host, "server address");
  app.add_option("--port", port, "server port")->required();
  app.add_option("--server-name", server_name, "name the server certificate carries");
  app.add_option("--trust-bundle", trust_bundle, "PEM roots of the server's chain")->required();
  app.add_option("--cert", cert, "PEM client certificate (chain) for --key")->required();
  app.add_option("--key", key_uri, "client key URI (file: or pkcs11:)")->required();
  app.add_option("--pkcs11-module", module, "PKCS #11 module for URIs without module-path");
  AddRunOptions(app, threads, "connecting threads", seconds, label, json_out);
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || seconds <= 0) return Fail("--threads and --seconds must be positive");

  DriverKeyStores stores(module);
  auto key = stores.Load(key_uri);
  if (!key) return Fail("loading " + key_uri + ": " + key.error().message());

  sdk::ClientTlsOptions tls;
  auto bundle = ReadFile(trust_bundle);
  auto chain = ReadFile(cert);
  if (!bundle || !chain) return Fail("reading --trust-bundle or --cert");
  tls.trust_bundle_pem = *bundle;
  tls.certificate_chain_pem = *chain;
  tls.client_key = std::shared_ptr<const keys::Key>(std::move(*key));
  tls.server_name = server_name;

  auto handshake = [&]() -> Status {
    DEVID_ASSIGN_OR_RETURN(sdk::HttpsClient client,
                           sdk::HttpsClient::Connect(host, static_cast<uint16_t>(port), tls));
    DEVID_ASSIGN_OR_RETURN(sdk::HttpResponse response, client.Send("GET", "/"));
    if (response.status != 200) {
      return std::unexpected(Unavailable("GET / answered " + std::to_string(response.status)));
    }
    return Ok();
  };
  if (Status first = handshake(); !first) return Fail(first.error().message());

  RateResult run = MeasureRate(threads, seconds, [&] { return handshake().has_value(); });
  nlohmann::json out = {
      {"label", label},
      {"key", tls.client_key->uri()},
      {"algorithm", std::string(keys::KeyAlgorithmName(tls.client_key->algorithm()))},
      {"threads", threads}};
  AddRateFields(out, run, "handshakes");
  if (!WriteJsonFile(json_out, out)) return Fail("writing " + json_out);
  std::printf(
      "%s%s, %d threads: %.0f handshakes/s (%.0f per CPU second of this process), latency ms "
      "p50 %.3f p99 %.3f, %llu failed\n",
      label.empty() ? "" : (label + ": ").c_str(), tls.client_key->uri().c_str(), threads,
      run.PerSecond(), run.PerCpuSecond(), run.PercentileMs(0.50), run.PercentileMs(0.99),
      static_cast<unsigned long long>(run.failures));
  return run.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace devid::bench

int main(int argc, char** argv) {
  return devid::bench::RunDriver("devid_tls_client_bench", devid::bench::Main, argc, argv);
}
