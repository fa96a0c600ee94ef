// devid_tpm_bench (Google Benchmark): the server side of the DPS TPM challenge per core. The
// activation blob alone (two RSA-2048 OAEP encryptions, KDFa, AES-CFB, HMAC), the whole
// TpmVerifier::Challenge (enrollment read, blob, pending challenge written to SQLite), the
// measured-boot extension, and one RSA-2048 public-key encryption as the same-run baseline.

#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "attestation/tpm/measured_boot.h"
#include "attestation/tpm/tpm_verifier.h"
#include "base/clock.h"
#include "base/random.h"
#include "registry/sqlite/sqlite_registry.h"
#include "tpm/credential.h"
#include "tpm/testing/software_quote.h"
#include "tpm/testing/software_tpm.h"

namespace {

using devid::tpm::testing::SoftwareAttestationKey;
using devid::tpm::testing::SoftwareTpm;

const SoftwareTpm& Device() {
  static const SoftwareTpm* device = new SoftwareTpm();
  return *device;
}

void BM_RsaOaepEncryptBaseline(benchmark::State& state) {
  devid::SecureRandom random;
  auto key = Device().ek().ToEvp();
  std::vector<uint8_t> seed = random.Bytes(32);
  for (auto _ : state) {
    auto out = devid::tpm::RsaOaepEncrypt(key->get(), devid::tpm::Alg::kSha256,
                                          devid::tpm::Label("IDENTITY"), seed);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RsaOaepEncryptBaseline)->Threads(1)->Threads(2)->UseRealTime();

void BM_BuildActivationBlob(benchmark::State& state) {
  devid::SecureRandom random;
  std::vector<uint8_t> key = random.Bytes(32);
  for (auto _ : state) {
    auto blob = devid::tpm::BuildActivationBlob(Device().ek(), Device().srk(), key, random);
    if (!blob) {
      state.SkipWithError("building the blob failed");
      break;
    }
    benchmark::DoNotOptimize(blob);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildActivationBlob)->Threads(1)->Threads(2)->UseRealTime();

// ChallengeFixture is one SQLite registry with kEnrollments TPM enrollments of the same EK.
struct ChallengeFixture {
  static constexpr int kEnrollments = 256;
  devid::SystemClock clock;
  devid::SecureRandom random;
  std::filesystem::path dir;
  std::unique_ptr<devid::registry::SqliteRegistry> registry;

  ChallengeFixture() {
    dir = std::filesystem::temp_directory_path() / ("devid-tpm-bench-" + random.Hex(8));
    std::filesystem::create_directories(dir);
    auto opened = devid::registry::SqliteRegistry::Open((dir / "devid.db").string(), clock, random);
    if (!opened) std::abort();
    registry = std::move(*opened);
    for (int i = 0; i < kEnrollments; ++i) {
      devid::registry::Enrollment e;
      e.registration_id = "tpm-" + std::to_string(i);
      e.settings.attestation.type = devid::registry::AttestationType::kTpm;
      e.settings.attestation.tpm = {Device().EkBase64(), Device().SrkBase64()};
      if (!registry->PutEnrollment(e, std::nullopt, {"bench"})) std::abort();
    }
  }
  ~ChallengeFixture() {
    registry.reset();
    std::filesystem::remove_all(dir);
  }
};

void BM_TpmChallenge(benchmark::State& state) {
  static ChallengeFixture* fixture = new ChallengeFixture();
  devid::attestation::TpmVerifier verifier(*fixture->registry, fixture->clock, fixture->random);
  devid::attestation::TpmKeys keys{Device().EkBase64(), Device().SrkBase64()};
  int i = state.thread_index() * 1000;
  for (auto _ : state) {
    std::string id = "tpm-" + std::to_string(i++ % ChallengeFixture::kEnrollments);
    auto challenge = verifier.Challenge(id, keys);
    if (!challenge) {
      state.SkipWithError(challenge.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TpmChallenge)->Threads(1)->Threads(2)->Threads(16)->Threads(64)->UseRealTime();

void BM_MeasuredBootChallengeAndVerify(benchmark::State& state) {
  static const SoftwareAttestationKey* ak = new SoftwareAttestationKey();
  devid::SecureRandom random;
  std::vector<uint8_t> key = random.Bytes(32);
  auto challenge = devid::attestation::MakeQuoteChallenge(Device().ek(), ak->ak(), key, random);
  std::vector<devid::tpm::Bytes> pcrs = {devid::tpm::Bytes(32, 1), devid::tpm::Bytes(32, 7)};
  devid::tpm::PcrPolicy policy{devid::tpm::Alg::kSha256, {0, 7},
                               {*devid::tpm::PcrCompositeDigest(devid::tpm::Alg::kSha256, pcrs)}};
  auto blob = devid::ossl::Base64Decode(challenge->attestation_key_credential);
  devid::tpm::Reader reader(*blob);
  auto id_object = reader.B2("id");
  auto secret = reader.B2("secret");
  auto activated = Device().ActivateCredential(*ak->ak().Name(), *id_object, *secret);
  auto nonce = devid::ossl::Base64Decode(challenge->nonce);
  auto quote = ak->Quote(*nonce, {devid::tpm::Alg::kSha256, {0, 7}}, pcrs);
  devid::attestation::QuoteEvidence evidence{ak->Base64(), devid::ossl::Base64Encode(*activated),
                                             devid::ossl::Base64Encode(quote.attest),
                                             devid::ossl::Base64Encode(quote.signature)};
  for (auto _ : state) {
    auto made = devid::attestation::MakeQuoteChallenge(Device().ek(), ak->ak(), key, random);
    auto verified = devid::attestation::VerifyQuote(policy, evidence, key);
    if (!made || !verified) {
      state.SkipWithError("measured boot failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MeasuredBootChallengeAndVerify)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
