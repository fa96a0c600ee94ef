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
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "driver.h"
#include "key_stores.h"
#include "keys/key_store.h"

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
  app.add_option("--message-bytes", message_bytes, "bytes signed per call");
  AddRunOptions(app, threads, "signing threads", seconds, label, json_out);
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || seconds <= 0) return Fail("--threads and --seconds must be positive");

  DriverKeyStores stores(module);
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
  double rate = run.PerSecond();
  double cpu_rate = run.PerCpuSecond();
  nlohmann::json out = {{"label", label},
                        {"key", (*key)->uri()},
                        {"algorithm", std::string(keys::KeyAlgorithmName((*key)->algorithm()))},
                        {"threads", threads},
                        {"message_bytes", message_bytes}};
  AddRateFields(out, run, "signatures");
  if (!WriteJsonFile(json_out, out)) return Fail("writing " + json_out);
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
  return devid::bench::RunDriver("devid_sign_bench", devid::bench::Main, argc, argv);
}
