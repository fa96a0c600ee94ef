#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "ca/command_signer.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "devid/command.h"
#include "ossl/base64.h"
#include "ossl/unique_ptr.h"

namespace devid::sdk {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

// The envelopes come from the server's own signer (ca::CommandSigner) over a test CA, so these
// tests also check that what devid signs is what the SDK verifies.
class CommandVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("devid-command-" + std::to_string(::getpid()) + "-" + random_.Hex(4));
    std::filesystem::create_directories(dir_);
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
    signer_ = MakeSigner();
    other_signer_ = MakeSigner();
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<ca::CommandSigner> MakeSigner() {
    auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    EXPECT_TRUE(pkey);
    auto key = keys::SoftwareKey(std::move(*pkey), "test:command-signer");
    EXPECT_TRUE(key);
    auto certificate = authority_->Issue(
        ca::kCommandSignerProfile,
        {.common_name = "devid command signer", .public_key = (*key)->public_key()});
    EXPECT_TRUE(certificate) << certificate.error().message();
    auto signer = ca::CreateCommandSigner(std::move(*certificate), std::move(*key));
    EXPECT_TRUE(signer) << signer.error().message();
    return std::move(*signer);
  }

  static int64_t Unix(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
  }

  std::string Claims(int64_t seq, const std::string& device = "dev-1", seconds ttl = seconds(300)) {
    nlohmann::ordered_json claims = {{"deviceId", device},
                                     {"seq", seq},
                                     {"iat", Unix(clock_.Now())},
                                     {"exp", Unix(clock_.Now() + ttl)},
                                     {"command", {{"reboot", true}}}};
    return claims.dump();
  }

  std::string Sign(const std::string& claims, const ca::CommandSigner* signer = nullptr) {
    auto envelope = (signer ? signer : signer_.get())->Sign(claims);
    EXPECT_TRUE(envelope) << envelope.error().message();
    return envelope.value_or("");
  }

  std::string StateFile() const { return (dir_ / "command-state.json").string(); }

  std::unique_ptr<CommandVerifier> Verifier(const std::string& device = "dev-1") {
    auto verifier =
        CommandVerifier::Create({.device_id = device,
                                 .signer_certificates_pem = signer_->certificate().ToPem(),
                                 .state_file = StateFile()},
                                clock_);
    EXPECT_TRUE(verifier) << verifier.error().message();
    return verifier ? std::move(*verifier) : nullptr;
  }

  // ExpectRefused checks the reason and message, and that the state file did not move.
  void ExpectRefused(const std::string& envelope, CommandRefusal reason,
                     const std::string& message_part) {
    std::string before = ReadFile(StateFile()).value_or("(none)");
    auto accepted = Verifier()->Accept(envelope);
    ASSERT_FALSE(accepted.has_value()) << "accepted " << accepted->command_json;
    EXPECT_EQ(accepted.error().reason, reason) << accepted.error().message;
    EXPECT_THAT(accepted.error().message, HasSubstr(message_part));
    EXPECT_EQ(ReadFile(StateFile()).value_or("(none)"), before);
  }

  static std::vector<std::string> Parts(const std::string& envelope) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t dot; (dot = envelope.find('.', start)) != std::string::npos; start = dot + 1) {
      parts.push_back(envelope.substr(start, dot - start));
    }
    parts.push_back(envelope.substr(start));
    return parts;
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::filesystem::path dir_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<ca::CommandSigner> signer_;
  std::unique_ptr<ca::CommandSigner> other_signer_;
};

TEST_F(CommandVerifierTest, Accepts_CommandFromPinnedSignerAndRecordsSequence) {
  auto accepted = Verifier()->Accept(Sign(Claims(1)));
  ASSERT_TRUE(accepted.has_value()) << accepted.error().message;
  EXPECT_EQ(accepted->device_id, "dev-1");
  EXPECT_EQ(accepted->sequence, 1);
  EXPECT_EQ(accepted->command_json, R"({"reboot":true})");
  EXPECT_EQ(accepted->signer_thumbprint, signer_->certificate().Sha256Thumbprint());
  struct stat st {};
  ASSERT_EQ(::stat(StateFile().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(*ReadFile(StateFile()), HasSubstr(R"("lastSequence":1)"));
  // A later number is new, from a fresh verifier too (the state is on disk).
  auto next = Verifier()->Accept(Sign(Claims(5)));
  ASSERT_TRUE(next.has_value()) << next.error().message;
  EXPECT_EQ(next->sequence, 5);
}

TEST_F(CommandVerifierTest, Accepts_AnyOfSeveralPinnedSigners) {
  std::string pem = other_signer_->certificate().ToPem() + signer_->certificate().ToPem();
  auto verifier = CommandVerifier::Create(
      {.device_id = "dev-1", .signer_certificates_pem = pem, .state_file = StateFile()}, clock_);
  ASSERT_TRUE(verifier) << verifier.error().message();
  EXPECT_TRUE((*verifier)->Accept(Sign(Claims(1), other_signer_.get())).has_value());
  EXPECT_TRUE((*verifier)->Accept(Sign(Claims(2))).has_value());
}

TEST_F(CommandVerifierTest, Accepts_RenewedCertificateOfThePinnedKey) {
  // The server renewed its certificate with the same key; the device still pins the old one.
  auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(pkey);
  ASSERT_EQ(EVP_PKEY_up_ref(pkey->get()), 1);
  ossl::UniquePtr<EVP_PKEY> same(pkey->get());
  auto old_key = keys::SoftwareKey(std::move(*pkey), "test:old");
  auto new_key = keys::SoftwareKey(std::move(same), "test:new");
  ASSERT_TRUE(old_key && new_key);
  auto old_certificate = authority_->Issue(
      ca::kCommandSignerProfile, {.common_name = "old", .public_key = (*old_key)->public_key()});
  auto new_certificate = authority_->Issue(
      ca::kCommandSignerProfile, {.common_name = "new", .public_key = (*new_key)->public_key()});
  ASSERT_TRUE(old_certificate && new_certificate);
  std::string pinned = old_certificate->ToPem();
  auto renewed = ca::CreateCommandSigner(std::move(*new_certificate), std::move(*new_key));
  ASSERT_TRUE(renewed) << renewed.error().message();
  auto verifier = CommandVerifier::Create(
      {.device_id = "dev-1", .signer_certificates_pem = pinned, .state_file = StateFile()}, clock_);
  ASSERT_TRUE(verifier) << verifier.error().message();
  auto accepted = (*verifier)->Accept(Sign(Claims(1), renewed->get()));
  ASSERT_TRUE(accepted.has_value()) << accepted.error().message;
  EXPECT_EQ(accepted->signer_thumbprint, old_certificate->Sha256Thumbprint());
  // Once the pinned certificate has expired, its key is no longer trusted either.
  clock_.Advance(std::chrono::hours(24 * 366));
  auto late = (*verifier)->Accept(Sign(Claims(2, "dev-1", seconds(60)), renewed->get()));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().reason, CommandRefusal::kUnknownSigner);
}

TEST_F(CommandVerifierTest, Rejects_UnsignedCommandWithAlgNone) {
  std::string header =
      ossl::Base64UrlEncode(std::string_view(R"({"alg":"none","typ":"devid-command+jws"})"));
  ExpectRefused(header + "." + ossl::Base64UrlEncode(Claims(1)) + ".", CommandRefusal::kUnsigned,
                "not signed");
}

TEST_F(CommandVerifierTest, Rejects_CommandWithSignatureStripped) {
  std::vector<std::string> parts = Parts(Sign(Claims(1)));
  ExpectRefused(parts[0] + "." + parts[1] + ".", CommandRefusal::kUnsigned, "not signed");
}

TEST_F(CommandVerifierTest, Rejects_CommandSignedByAnotherKey) {
  ExpectRefused(Sign(Claims(1), other_signer_.get()), CommandRefusal::kUnknownSigner,
                "not your pinned command signer");
}

TEST_F(CommandVerifierTest, Rejects_OtherKeyClaimingThePinnedCertificate) {
  // Another key signs under a header copied from a genuine envelope (the pinned x5t#S256).
  std::vector<std::string> genuine = Parts(Sign(Claims(1)));
  std::vector<std::string> forged = Parts(Sign(Claims(1), other_signer_.get()));
  ExpectRefused(genuine[0] + "." + forged[1] + "." + forged[2], CommandRefusal::kBadSignature,
                "does not verify");
}

TEST_F(CommandVerifierTest, Rejects_TamperedPayload) {
  std::vector<std::string> parts = Parts(Sign(Claims(1)));
  std::string tampered = Claims(1);
  tampered.replace(tampered.find("true"), 4, "1   ");
  ExpectRefused(parts[0] + "." + ossl::Base64UrlEncode(tampered) + "." + parts[2],
                CommandRefusal::kBadSignature, "does not verify");
}

TEST_F(CommandVerifierTest, Rejects_CommandForAnotherDevice) {
  ExpectRefused(Sign(Claims(1, "dev-2")), CommandRefusal::kOtherDevice,
                "for device \"dev-2\", not this one");
}

TEST_F(CommandVerifierTest, Rejects_ExpiredCommandBeyondClockSkew) {
  std::string envelope = Sign(Claims(1, "dev-1", seconds(300)));
  clock_.Advance(seconds(300 + 61));
  ExpectRefused(envelope, CommandRefusal::kExpired, "expired at");
}

TEST_F(CommandVerifierTest, Accepts_CommandExpiredWithinClockSkew) {
  std::string envelope = Sign(Claims(1, "dev-1", seconds(300)));
  clock_.Advance(seconds(300 + 59));
  EXPECT_TRUE(Verifier()->Accept(envelope).has_value());
}

TEST_F(CommandVerifierTest, Rejects_CommandDatedInTheFuture) {
  std::string envelope = Sign(Claims(1));
  clock_.Advance(-seconds(120));
  ExpectRefused(envelope, CommandRefusal::kNotYetValid, "in the future");
}

TEST_F(CommandVerifierTest, Rejects_ReplayedAndOlderSequence) {
  std::string third = Sign(Claims(3));
  std::string second = Sign(Claims(2));
  ASSERT_TRUE(Verifier()->Accept(third).has_value());
  ExpectRefused(third, CommandRefusal::kReplayed, "already accepted command 3");
  ExpectRefused(second, CommandRefusal::kReplayed, "command 2 is a replay");
}

TEST_F(CommandVerifierTest, Rejects_MalformedEnvelopes) {
  std::vector<std::string> parts = Parts(Sign(Claims(1)));
  ExpectRefused("", CommandRefusal::kMalformed, "three base64url parts");
  ExpectRefused("not a command", CommandRefusal::kMalformed, "three base64url parts");
  ExpectRefused(parts[0] + "." + parts[1], CommandRefusal::kMalformed, "three base64url parts");
  ExpectRefused("@@@." + parts[1] + "." + parts[2], CommandRefusal::kMalformed, "header");
  ExpectRefused(ossl::Base64UrlEncode(std::string_view("[1]")) + "." + parts[1] + "." + parts[2],
                CommandRefusal::kMalformed, "header");
  ExpectRefused(ossl::Base64UrlEncode(std::string_view(R"({"alg":"ES256","typ":"JWT"})")) + "." +
                    parts[1] + "." + parts[2],
                CommandRefusal::kMalformed, "not a devid command");
  ExpectRefused(ossl::Base64UrlEncode(std::string_view(
                    R"({"alg":"ES256","typ":"devid-command+jws","crit":["exp"]})")) +
                    "." + parts[1] + "." + parts[2],
                CommandRefusal::kMalformed, "critical");
  ExpectRefused(Sign(R"({"deviceId":"dev-1","seq":1})"), CommandRefusal::kMalformed,
                "lack deviceId, seq, iat, exp or command");
  ExpectRefused(Sign(Claims(0)), CommandRefusal::kMalformed, "below 1");
  ExpectRefused(std::string(70 * 1024, 'a'), CommandRefusal::kMalformed, "byte limit");
}

TEST_F(CommandVerifierTest, Rejects_CommandAfterSignerCertificateExpired) {
  std::string envelope = Sign(Claims(1, "dev-1", seconds(24 * 3600 * 400)));
  clock_.Advance(std::chrono::hours(24 * 366));
  ExpectRefused(envelope, CommandRefusal::kSignerNotValid, "is valid only from");
}

TEST_F(CommandVerifierTest, Rejects_StateFileOfAnotherDevice) {
  ASSERT_TRUE(Verifier("dev-2")->Accept(Sign(Claims(1, "dev-2"))).has_value());
  auto verifier =
      CommandVerifier::Create({.device_id = "dev-1",
                               .signer_certificates_pem = signer_->certificate().ToPem(),
                               .state_file = StateFile()},
                              clock_);
  ASSERT_FALSE(verifier.has_value());
  EXPECT_EQ(verifier.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(verifier.error().message(), HasSubstr("belongs to device \"dev-2\""));
}

TEST_F(CommandVerifierTest, Rejects_OptionsWithoutSignerOrWithTooMuchSkew) {
  auto no_signer = CommandVerifier::Create(
      {.device_id = "dev-1", .signer_certificates_pem = "", .state_file = StateFile()}, clock_);
  ASSERT_FALSE(no_signer.has_value());
  EXPECT_THAT(no_signer.error().message(), HasSubstr("no PEM certificate"));
  auto skew = CommandVerifier::Create({.device_id = "dev-1",
                                       .signer_certificates_pem = signer_->certificate().ToPem(),
                                       .state_file = StateFile(),
                                       .clock_skew = seconds(301)},
                                      clock_);
  ASSERT_FALSE(skew.has_value());
  EXPECT_THAT(skew.error().message(), HasSubstr("clock skew"));
}

}  // namespace
}  // namespace devid::sdk
