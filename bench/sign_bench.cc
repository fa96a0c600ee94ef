// devid_sign_bench: the signing rate of one key through devid's own key stores, the ceiling for
// certificate issuance with that key. T threads call keys::Key::Sign on the same key in a loop for
// a fixed time, each on a message the size of a device certificate's TBSCertificate. For a
// `pkcs11:` key each concurrent signature borrows its own session from Pkcs11KeyStore's pool, as
// `devid serve` does; for a `file:` key it is OpenSSL in process.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keys/key_store.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"
#include "rate_meter.h"

namespace devid::bench {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "devid_sign_bench: %s\n", message.c_str());
  return 2;
}

int Main(int argc, char** argv) {
  std::string key_uri;
  std::string module;
  std::string label;
  std::string json_out;
  int threads = 1;
  double seconds = 3;
  size_t message_bytes = 450;
  CLI::App app{"devid_sign_bench: signatures per second through devid's key stores"};
  app.add_option("--key", key_uri, "key URI (file: or pkcs11:)")->required();
  app.add_option("--pkcs11-module", module, "PKCS #11 module for URIs without module-path");
  app.add_option("--threads", threads, "signing threads");
  app.add_option("--seconds", seconds, "measured time");
  app.add_option("--message-bytes", message_bytes, "bytes signed per call");
  app.add_option("--label", label, "name of this run in the output");
  app.add_option("--json-out", json_out, "also write the JSON result here");
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || seconds <= 0) return Fail("--threads and --seconds must be positive");

  keys::FileKeyStore file_keys([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  });
  keys::Pkcs11KeyStore pkcs11_keys(module);
  keys::KeyStores stores;
  stores.Add("file", file_keys);
  stores.Add("pkcs11", pkcs11_keys);
  auto key = stores.Load(key_uri);
  if (!key) return Fail("loading " + key_uri + ": " + key.error().message());

  std::vector<uint8_t> message(message_bytes, 0x5a);
  auto check = (*key)->Sign(message);
  if (!check) return Fail("signing: " + check.error().message());
  if (auto s = keys::VerifySignature((*key)->public_key(), (*key)->algorithm(), message, *check);
      !s) {
    return Fail("the signature does not verify: " + s.error().message());
  }

  RateResult run = MeasureRate(threads, seconds, [&] { return (*key)->Sign(message).has_value(); });
  uint64_t signatures = run.ok;
  double rate = run.PerSecond();
  double cpu_rate = run.PerCpuSecond();
  nlohmann::json out = {
      {"label", label},
      {"key", (*key)->uri()},
      {"algorithm", std::string(keys::KeyAlgorithmName((*key)->algorithm()))},
      {"threads", threads},
      {"message_bytes", message_bytes},
      {"signatures", signatures},
      {"failures", run.failures},
      {"elapsed_s", std::round(run.elapsed_s * 1000) / 1000},
      {"signatures_per_s", std::round(rate * 10) / 10},
      {"cpu_s", std::round(run.cpu_s * 100) / 100},
      {"signatures_per_cpu_s", std::round(cpu_rate * 10) / 10},
      {"latency_ms",
       {{"p50", run.PercentileMs(0.50)}, {"p99", run.PercentileMs(0.99)}, {"max", run.MaxMs()}}}};
  if (!json_out.empty()) {
    std::ofstream file(json_out);
    file << out.dump(2) << "\n";
    if (!file) return Fail("writing " + json_out);
  }
  std::printf(
      "%s%s %s, %d threads: %.0f signatures/s (%.0f per CPU second), latency ms p50 %.3f "
      "p99 %.3f, %llu failed\n",
      label.empty() ? "" : (label + ": ").c_str(), (*key)->uri().c_str(),
      std::string(keys::KeyAlgorithmName((*key)->algorithm())).c_str(), threads, rate, cpu_rate,
      run.PercentileMs(0.50), run.PercentileMs(0.99),
      static_cast<unsigned long long>(run.failures));
  return run.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace devid::bench

int main(int argc, char** argv) {
  try {
    return devid::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "devid_sign_bench: %s\n", e.what());
    return 2;
  }
}
