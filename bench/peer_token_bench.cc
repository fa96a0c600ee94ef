// Peer tokens per core (Google Benchmark; bench/tokens.sh): the authority's signing of one token
// (api::TokenIssuer, no HTTP, policy or audit) and a peer's offline check of one
// (sdk::PeerTokenVerifier::Accept), each token with a fresh jti so the replay cache grows as in
// life — from empty, and in the last stretch before its default bound of 100,000 entries.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/token_issuer.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/testing/test_csr.h"
#include "ca/token_signer.h"
#include "devid/peer_token.h"
#include "pki/x5t.h"

namespace devid::bench {
namespace {

constexpr int64_t kMeasuredTokens = 20000;
constexpr size_t kReplayBound = 100000;  // PeerTokenVerifierOptions' default

// Die reports a set-up failure; a benchmark of a broken fixture would measure nothing.
[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "devid_peer_token_bench: %s\n", what.c_str());
  std::exit(2);
}

// Authority is a test CA, a P-256 token signer it certified, and device sensor-1's certificate.
struct Authority {
  Authority() {
    auto ca = ca::testing::MakeTestCa(clock, random);
    if (!ca) Die(ca.error().message());
    authority = std::move(*ca);
    auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    if (!pkey) Die(pkey.error().message());
    auto key = keys::SoftwareKey(std::move(*pkey), "bench:token-signer");
    if (!key) Die(key.error().message());
    auto certificate = authority->Issue(
        ca::kTokenSignerProfile,
        {.common_name = "devid token signer", .public_key = (*key)->public_key()});
    if (!certificate) Die(certificate.error().message());
    auto made = ca::JwsSigner::Create(std::move(*certificate), std::move(*key),
                                      ca::kPeerTokenType);
    if (!made) Die(made.error().message());
    signer = std::move(*made);
    auto device_key = ca::testing::TestKey("P-256");
    auto device = authority->Issue(ca::kDeviceClientProfile,
                                   {.common_name = "sensor-1", .public_key = device_key.get()});
    if (!device) Die(device.error().message());
    peer = std::move(*device);
    issuer.emplace(
        [s = signer]() -> Result<std::shared_ptr<const ca::JwsSigner>> { return s; }, clock,
        random, api::TokenIssuerOptions{.issuer = "https://localhost", .ttl = std::chrono::seconds(300)});
    x5t = pki::X5tS256(*peer);
  }

  std::string Issue() const {
    auto issued = issuer->Issue(
        {.subject = "sensor-1", .audience = "historian", .scope = "t:write", .x5t_s256 = x5t});
    if (!issued) Die(issued.error().message());
    return issued->token;
  }

  std::vector<std::string> IssueMany(int64_t n) const {
    std::vector<std::string> tokens;
    tokens.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tokens.push_back(Issue());
    return tokens;
  }

  std::unique_ptr<sdk::PeerTokenVerifier> Verifier() const {
    auto verifier = sdk::PeerTokenVerifier::Create(
        {.audience = "historian",
         .signer_certificates_pem = signer->certificate().ToPem(),
         .max_replay_entries = kReplayBound},
        clock);
    if (!verifier) Die(verifier.error().message());
    return std::move(*verifier);
  }

  FakeClock clock{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random;
  std::unique_ptr<ca::Authority> authority;
  std::shared_ptr<const ca::JwsSigner> signer;
  std::optional<pki::Certificate> peer;
  std::optional<api::TokenIssuer> issuer;
  std::string x5t;
};

Authority& Shared() {
  static Authority authority;
  return authority;
}

// Accepts each of tokens once, counting refusals as errors.
void AcceptAll(benchmark::State& state, sdk::PeerTokenVerifier& verifier,
               const std::vector<std::string>& tokens) {
  size_t next = 0;
  for (auto _ : state) {
    auto accepted = verifier.Accept(tokens[next++], *Shared().peer, "t:write");
    if (!accepted) {
      state.SkipWithError(accepted.error().message.c_str());
      break;
    }
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(next), benchmark::Counter::kIsRate);
}

void BM_IssuePeerToken(benchmark::State& state) {
  const Authority& authority = Shared();
  for (auto _ : state) benchmark::DoNotOptimize(authority.Issue());
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IssuePeerToken)->Unit(benchmark::kMicrosecond);

void BM_AcceptFreshJtiEmptyCache(benchmark::State& state) {
  auto tokens = Shared().IssueMany(kMeasuredTokens);
  auto verifier = Shared().Verifier();
  AcceptAll(state, *verifier, tokens);
}
BENCHMARK(BM_AcceptFreshJtiEmptyCache)->Iterations(kMeasuredTokens)->Unit(benchmark::kMicrosecond);

void BM_AcceptFreshJtiCacheNearBound(benchmark::State& state) {
  auto verifier = Shared().Verifier();
  auto filler = Shared().IssueMany(static_cast<int64_t>(kReplayBound) - kMeasuredTokens);
  for (const auto& token : filler) {
    if (!verifier->Accept(token, *Shared().peer, "t:write")) Die("filling the replay cache");
  }
  auto tokens = Shared().IssueMany(kMeasuredTokens);
  AcceptAll(state, *verifier, tokens);
}
BENCHMARK(BM_AcceptFreshJtiCacheNearBound)
    ->Iterations(kMeasuredTokens)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace devid::bench

BENCHMARK_MAIN();
