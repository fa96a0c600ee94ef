// Peer tokens against the real `devid serve` (docs/tokens.md): two devices enrolled through
// EST; the policy lets peer-a reach peer-b, so `devid peer token` over mutual TLS prints a token,
// which still verifies offline after the server is stopped, and only for peer-a's certificate.
// The policy's refusal is a 403 that audits nothing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "peer_devices.h"
#include "registry/sqlite/sqlite_registry.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceA[] = "peer-a";
constexpr char kDeviceB[] = "peer-b";

constexpr char kPolicy[] = R"([tokens]
ttl_seconds = 120
[[tokens.rule]]
from_devices = ["peer-a"]
to_devices = ["peer-b"]
scopes = ["door:open"]
)";

class PeerTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = ServerProcess::Start(ServerProcessOptions{.config_toml = kPolicy});
    ASSERT_TRUE(started.has_value()) << started.error().message();
    server_.emplace(std::move(*started));
    dir_ = server_->root() + "/devices";
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/passphrase", "peer key passphrase\n", 0600));
    ASSERT_NO_FATAL_FAILURE(EnrollPeerDevice(*server_, dir_, kDeviceA, kPeerKeyA));
    ASSERT_NO_FATAL_FAILURE(EnrollPeerDevice(*server_, dir_, kDeviceB, kPeerKeyB));
  }

  std::string KeyUri(const std::string& device) const { return PeerKeyUri(dir_, device); }
  std::string Certificate(const std::string& device) const { return PeerCertificate(dir_, device); }

  CommandResult AskToken(const std::string& from, const std::string& to, const std::string& scope) {
    return RunCommand({DEVID_BINARY, "peer", "token", "--to", to, "--scope", scope, "--cert",
                       Certificate(from), "--key", KeyUri(from), "--endpoint",
                       server_->device_endpoint(), "--trust-bundle", server_->trust_bundle_file()});
  }

  CommandResult VerifyToken(const std::string& token_file, const std::string& presenter,
                            const std::string& scope = "door:open") {
    return RunCommand({DEVID_BINARY, "peer", "verify-token", token_file, "--audience", kDeviceB,
                       "--signer", server_->data_dir() + "/token-signer.pem", "--peer-cert",
                       Certificate(presenter), "--scope", scope});
  }

  // TokenAudits counts the store's token.issue records.
  int TokenAudits() {
    SystemClock clock;
    SecureRandom random;
    auto registry =
        registry::SqliteRegistry::Open(server_->data_dir() + "/devid.db", clock, random);
    EXPECT_TRUE(registry) << registry.error().message();
    if (!registry) return -1;
    auto records = (*registry)->ListAudit(0, 100000);
    if (!records) return -1;
    int count = 0;
    for (const registry::AuditRecord& record : *records) {
      if (record.action == "token.issue") ++count;
    }
    return count;
  }

  // TokenAuditsWithin waits for the store to hold want token.issue records (the server writes
  // them within its max_defer, 100 ms) and returns the count it last saw.
  int TokenAuditsWithin(int want, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    int count = TokenAudits();
    while (count != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      count = TokenAudits();
    }
    return count;
  }

  std::optional<ServerProcess> server_;
  std::string dir_;
};

TEST_F(PeerTokenTest, PolicyAllows_TokenVerifiesOfflineAfterTheServerStops) {
  EXPECT_EQ(server_->connection().value("tokenSigner", ""),
            server_->data_dir() + "/token-signer.pem");
  CommandResult token = AskToken(kDeviceA, kDeviceB, "door:open");
  ASSERT_EQ(token.exit_code, 0) << Describe(token);
  std::string token_file = dir_ + "/token.jwt";
  ASSERT_TRUE(WriteFileAtomically(token_file, token.out, 0600));
  EXPECT_EQ(TokenAuditsWithin(1, std::chrono::seconds(10)), 1);

  auto stopped = server_->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();

  CommandResult accepted = VerifyToken(token_file, kDeviceA);
  ASSERT_EQ(accepted.exit_code, 0) << Describe(accepted);
  EXPECT_THAT(accepted.out, HasSubstr(R"("sub":"peer-a","aud":"peer-b","scope":["door:open"])"));

  // Presented by peer-b's certificate, the same token fails proof of possession.
  CommandResult stolen = VerifyToken(token_file, kDeviceB);
  EXPECT_EQ(stolen.exit_code, 1) << Describe(stolen);
  EXPECT_THAT(stolen.err, HasSubstr("token refused (wrong-holder)"));
  // A scope the token does not carry.
  CommandResult wider = VerifyToken(token_file, kDeviceA, "door:open door:unlock-all");
  EXPECT_EQ(wider.exit_code, 1) << Describe(wider);
  EXPECT_THAT(wider.err, HasSubstr("token refused (scope-not-granted)"));
  EXPECT_THAT(accepted.out + accepted.err + stolen.err, Not(HasSubstr(token.out.substr(0, 40))));
}

TEST_F(PeerTokenTest, PolicyDenies_403AndNothingAudited) {
  CommandResult denied = AskToken(kDeviceB, kDeviceA, "door:open");
  EXPECT_EQ(denied.exit_code, 1) << Describe(denied);
  EXPECT_THAT(denied.err, HasSubstr("token authority: 403 403001"));
  EXPECT_THAT(denied.err, HasSubstr("does not let peer-b obtain scope"));
  EXPECT_EQ(denied.out, "");
  CommandResult unknown = AskToken(kDeviceA, "peer-z", "door:open");
  EXPECT_EQ(unknown.exit_code, 1) << Describe(unknown);
  EXPECT_THAT(unknown.err, HasSubstr("token authority: 404 404007"));
  // Stopped, the server has written every record it queued.
  auto stopped = server_->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();
  EXPECT_EQ(TokenAudits(), 0);
}

}  // namespace
}  // namespace devid::testing
