// devid_sas_verify_bench (Google Benchmark): the gateway plugin's CPU per MQTT connect. A group
// device's IoT Hub SAS token is parsed and verified alone, and through DeviceAuthenticator with the
// registry lookups served from its cache (the plugin's hot path on reconnects). Beneath both, one
// HMAC-SHA256 of a SAS token's string to sign with ossl::HmacSha256, beside OpenSSL's one-shot
// HMAC() on the same input as the same-run baseline.

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <filesystem>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "gateway/device_authenticator.h"
#include "gateway/registry_cache.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "pki/sas_token.h"
#include "registry/sqlite/sqlite_registry.h"

namespace {

constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";
constexpr char kHub[] = "localhost";
constexpr char kDevice[] = "dev-1";

std::string Token(devid::Clock& clock) {
  auto key = devid::ossl::Base64Decode(*devid::pki::DeriveSymmetricKey(kGroupKey, kDevice));
  return devid::pki::CreateSasToken(
      *key, devid::PercentEncodeComponent(std::string(kHub) + "/devices/" + kDevice, true),
      clock.UnixSeconds() + 3600, "");
}

// A SAS token's string to sign: the URL-encoded resource, a line feed, the expiry.
constexpr char kStringToSign[] = "localhost%2Fdevices%2Fdev-1\n1893456000";

void BM_HmacSha256(benchmark::State& state) {
  auto key = devid::ossl::Base64Decode(*devid::pki::DeriveSymmetricKey(kGroupKey, kDevice));
  for (auto _ : state) {
    benchmark::DoNotOptimize(devid::ossl::HmacSha256(*key, kStringToSign));
  }
}
BENCHMARK(BM_HmacSha256);

void BM_HmacSha256OpenSslOneShot(benchmark::State& state) {
  auto key = devid::ossl::Base64Decode(*devid::pki::DeriveSymmetricKey(kGroupKey, kDevice));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
                                  reinterpret_cast<const unsigned char*>(kStringToSign),
                                  sizeof(kStringToSign) - 1, out, &length));
  }
}
BENCHMARK(BM_HmacSha256OpenSslOneShot);

void BM_ParseAndVerifySas(benchmark::State& state) {
  devid::SystemClock clock;
  std::string token = Token(clock);
  auto key = devid::ossl::Base64Decode(*devid::pki::DeriveSymmetricKey(kGroupKey, kDevice));
  for (auto _ : state) {
    auto parsed = devid::pki::ParseSasToken(token);
    if (!parsed || !devid::pki::VerifySasSignature(*parsed, *key)) {
      state.SkipWithError("verification failed");
      break;
    }
  }
}
BENCHMARK(BM_ParseAndVerifySas);

void BM_AuthenticateSasCached(benchmark::State& state) {
  devid::SystemClock clock;
  devid::SecureRandom random;
  auto dir = std::filesystem::temp_directory_path() / ("devid-sas-bench-" + random.Hex(8));
  std::filesystem::create_directories(dir);
  {
    auto registry =
        devid::registry::SqliteRegistry::Open((dir / "devid.db").string(), clock, random);
    devid::registry::EnrollmentGroup group;
    group.enrollment_group_id = "grp1";
    group.settings.attestation.type = devid::registry::AttestationType::kSymmetricKey;
    group.settings.attestation.symmetric_key.primary_key = kGroupKey;
    devid::registry::Registration reg;
    reg.registration_id = reg.device_id = kDevice;
    reg.assigned_hub = kHub;
    reg.status = "assigned";
    reg.enrollment_group_id = "grp1";
    reg.attestation_type = devid::registry::AttestationType::kSymmetricKey;
    devid::registry::Actor actor{"bench"};
    if (!registry || !(*registry)->PutEnrollmentGroup(group, std::nullopt, actor) ||
        !(*registry)->SaveRegistration(reg, actor)) {
      state.SkipWithError("setting up the registry failed");
      return;
    }
    devid::gateway::RegistryCache cache(**registry, clock, {});
    devid::gateway::DeviceAuthenticator authenticator(cache, clock, "");
    std::string username = std::string(kHub) + "/" + kDevice + "/?api-version=2021-04-12";
    std::string token = Token(clock);
    for (auto _ : state) {
      if (!authenticator.AuthenticateSas(kDevice, username, token)) {
        state.SkipWithError("authentication failed");
        break;
      }
    }
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuthenticateSasCached);

}  // namespace

BENCHMARK_MAIN();
