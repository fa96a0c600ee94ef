// Symmetric peer tokens (the Kerberos shape) against the real `devid serve` (docs/tokens.md):
// SAS devices sas-a, sas-b and sas-c hold only their enrollment keys. sas-a gets a token for sas-b
// and a session key over TLS with its SAS token; after the server stops, sas-b opens the session
// key with its own key and accepts sas-a's proof over its challenge. A proof without the session
// key, and a token sas-c obtained, fail; neither the server's log nor the output shows a key.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "base/file.h"
#include "peer_devices.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;


constexpr char kPolicy[] = R"([tokens]
ttl_seconds = 120
services = ["historian"]
[[tokens.rule]]
from_devices = ["sas-a", "sas-c"]
to_devices = ["sas-b"]
scopes = ["door:open"]
[[tokens.rule]]
from_devices = ["sas-a"]
to_services = ["historian"]
scopes = ["door:open"]
)";

class PeerTokenSymmetricTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = ServerProcess::Start(ServerProcessOptions{.config_toml = kPolicy});
    ASSERT_TRUE(started.has_value()) << started.error().message();
    server_.emplace(std::move(*started));
    dir_ = server_->root() + "/devices";
    std::filesystem::create_directories(dir_);
    ASSERT_NO_FATAL_FAILURE(AddSasDevice(*server_, dir_, "sas-a", kPeerKeyA));
    ASSERT_NO_FATAL_FAILURE(AddSasDevice(*server_, dir_, "sas-b", kPeerKeyB));
    ASSERT_NO_FATAL_FAILURE(AddSasDevice(*server_, dir_, "sas-c", kPeerKeyC));
  }

  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  // AskToken has device ask for a token to sas-b; the session key goes to <device>.session.
  CommandResult AskToken(const std::string& device, const std::string& to = "sas-b") {
    return RunCommand({DEVID_BINARY, "peer", "token", "--to", to, "--scope", "door:open",
                       "--symmetric-key-file", File(device + ".sas"), "--registration-id", device,
                       "--id-scope", server_->id_scope(), "--session-key-out",
                       File(device + ".session"), "--endpoint", server_->device_endpoint(),
                       "--trust-bundle", server_->trust_bundle_file()});
  }

  // Challenge has sas-b issue a challenge, written to name.
  void Challenge(const std::string& name) {
    CommandResult challenge = RunCommand({DEVID_BINARY, "peer", "challenge"});
    ASSERT_EQ(challenge.exit_code, 0) << Describe(challenge);
    ASSERT_TRUE(WriteFileAtomically(File(name), challenge.out, 0600));
  }

  // Prove answers the challenge with the session key in session_file, as from (to sas-b).
  CommandResult Prove(const std::string& session_file, const std::string& challenge,
                      const std::string& from, const std::string& proof) {
    CommandResult proved = RunCommand({DEVID_BINARY, "peer", "prove", "--session-key-file",
                                       File(session_file), "--challenge-file", File(challenge),
                                       "--from", from, "--to", "sas-b"});
    EXPECT_TRUE(WriteFileAtomically(File(proof), proved.out, 0600));
    return proved;
  }

  CommandResult Verify(const std::string& token, const std::string& challenge,
                       const std::string& proof) {
    return RunCommand({DEVID_BINARY, "peer", "verify-token", File(token), "--audience", "sas-b",
                       "--signer", server_->data_dir() + "/token-signer.pem",
                       "--symmetric-key-file", File("sas-b.sas"), "--challenge-file",
                       File(challenge), "--proof-file", File(proof), "--scope", "door:open"});
  }

  std::optional<ServerProcess> server_;
  std::string dir_;
};

TEST_F(PeerTokenSymmetricTest, SessionKeyProof_VerifiesOfflineAfterTheServerStops) {
  CommandResult token = AskToken("sas-a");
  ASSERT_EQ(token.exit_code, 0) << Describe(token);
  ASSERT_TRUE(WriteFileAtomically(File("a.jwt"), token.out, 0600));
  EXPECT_EQ(std::filesystem::status(File("sas-a.session")).permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  CommandResult other = AskToken("sas-c");
  ASSERT_EQ(other.exit_code, 0) << Describe(other);
  ASSERT_TRUE(WriteFileAtomically(File("c.jwt"), other.out, 0600));
  auto session_key = ReadFile(File("sas-a.session"));
  ASSERT_TRUE(session_key);
  std::string log = server_->log();
  EXPECT_THAT(log, Not(HasSubstr(session_key->substr(0, 43))));
  EXPECT_THAT(log, Not(HasSubstr(kPeerKeyA)));

  auto stopped = server_->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();

  Challenge("challenge-1");
  ASSERT_EQ(Prove("sas-a.session", "challenge-1", "sas-a", "proof-1").exit_code, 0);
  CommandResult accepted = Verify("a.jwt", "challenge-1", "proof-1");
  ASSERT_EQ(accepted.exit_code, 0) << Describe(accepted);
  EXPECT_THAT(accepted.out, HasSubstr(R"("sub":"sas-a","aud":"sas-b","scope":["door:open"])"));
  EXPECT_THAT(accepted.out + accepted.err, Not(HasSubstr(session_key->substr(0, 43))));

  // Without the session key: a key of its own choosing makes a proof that does not verify.
  ASSERT_TRUE(WriteFileAtomically(File("guessed.session"), std::string(kPeerKeyC) + "\n", 0600));
  Challenge("challenge-2");
  ASSERT_EQ(Prove("guessed.session", "challenge-2", "sas-a", "proof-2").exit_code, 0);
  CommandResult guessed = Verify("a.jwt", "challenge-2", "proof-2");
  EXPECT_EQ(guessed.exit_code, 1) << Describe(guessed);
  EXPECT_THAT(guessed.err, HasSubstr("token refused (wrong-holder)"));

  // sas-c's own token, presented with sas-a's session key as if it were sas-a's.
  Challenge("challenge-3");
  ASSERT_EQ(Prove("sas-a.session", "challenge-3", "sas-a", "proof-3").exit_code, 0);
  CommandResult swapped = Verify("c.jwt", "challenge-3", "proof-3");
  EXPECT_EQ(swapped.exit_code, 1) << Describe(swapped);
  EXPECT_THAT(swapped.err, HasSubstr("token refused (wrong-holder)"));
}

TEST_F(PeerTokenSymmetricTest, Refusals_WrongKeyUnknownAudienceAndService) {
  // sas-a's token signed with sas-c's key.
  ASSERT_TRUE(WriteFileAtomically(File("sas-a.sas"), std::string(kPeerKeyC) + "\n", 0600));
  CommandResult forged = AskToken("sas-a");
  EXPECT_EQ(forged.exit_code, 1) << Describe(forged);
  EXPECT_THAT(forged.err, HasSubstr("token authority: 401 401002"));
  EXPECT_FALSE(std::filesystem::exists(File("sas-a.session")));
  // An audience devid does not know.
  ASSERT_TRUE(WriteFileAtomically(File("sas-a.sas"), std::string(kPeerKeyA) + "\n", 0600));
  CommandResult nobody = AskToken("sas-a", "sas-z");
  EXPECT_EQ(nobody.exit_code, 1) << Describe(nobody);
  EXPECT_THAT(nobody.err, HasSubstr("token authority: 404 404007"));
  EXPECT_EQ(nobody.out, "");
  // A service the policy lets sas-a reach holds no key to seal a session key for.
  CommandResult service = AskToken("sas-a", "historian");
  EXPECT_EQ(service.exit_code, 1) << Describe(service);
  EXPECT_THAT(service.err, HasSubstr("token authority: 409 409004"));
  EXPECT_EQ(service.out, "");
  EXPECT_FALSE(std::filesystem::exists(File("sas-a.session")));
}

}  // namespace
}  // namespace devid::testing
