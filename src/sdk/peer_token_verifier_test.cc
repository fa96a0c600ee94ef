// Offline peer-token verification: tokens from the server's own issuer (api::TokenIssuer over a
// test CA), so these tests also check that what the authority issues is what a peer accepts.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/token_issuer.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/testing/test_csr.h"
#include "ca/testing/test_token_signer.h"
#include "ca/token_signer.h"
#include "devid/peer_token.h"
#include "ossl/base64.h"
#include "pki/x5t.h"

namespace devid::sdk {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class PeerTokenVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
    signer_ = MakeSigner(ca::kPeerTokenType);
    other_signer_ = MakeSigner(ca::kPeerTokenType);
    peer_ = DeviceCertificate("sensor-1");
    other_peer_ = DeviceCertificate("sensor-2");
  }

  std::shared_ptr<const ca::JwsSigner> MakeSigner(std::string_view typ) {
    auto signer = ca::testing::MakeTestTokenSigner(*authority_, typ);
    EXPECT_TRUE(signer) << signer.error().message();
    return signer ? *signer : nullptr;
  }

  pki::Certificate DeviceCertificate(const std::string& id) {
    auto key = ca::testing::TestKey("P-256");
    auto certificate =
        authority_->Issue(ca::kDeviceClientProfile, {.common_name = id, .public_key = key.get()});
    EXPECT_TRUE(certificate) << certificate.error().message();
    return std::move(*certificate);
  }

  // Issue has the authority's issuer make a token for sensor-1 (bound to peer_) to aud.
  std::string Issue(const std::string& aud = "historian", const std::string& scope = "t:write",
                    std::shared_ptr<const ca::JwsSigner> signer = nullptr,
                    seconds ttl = seconds(300)) {
    if (!signer) signer = signer_;
    api::TokenIssuer issuer(
        [signer]() -> Result<std::shared_ptr<const ca::JwsSigner>> { return signer; }, clock_,
        random_, {.issuer = "https://localhost", .ttl = ttl});
    auto issued = issuer.Issue(
        {.subject = "sensor-1", .audience = aud, .scope = scope, .x5t_s256 = pki::X5tS256(*peer_)});
    EXPECT_TRUE(issued) << issued.error().message();
    return issued ? issued->token : "";
  }

  std::unique_ptr<PeerTokenVerifier> Verifier(const std::string& audience = "historian") {
    auto verifier = PeerTokenVerifier::Create(
        {.audience = audience, .signer_certificates_pem = signer_->certificate().ToPem()}, clock_);
    EXPECT_TRUE(verifier) << verifier.error().message();
    return verifier ? std::move(*verifier) : nullptr;
  }

  void ExpectRefused(PeerTokenVerifier& verifier, const std::string& token, PeerTokenRefusal reason,
                     const std::string& message_part, const pki::Certificate* presenter = nullptr,
                     std::string_view scope = "t:write") {
    auto accepted = verifier.Accept(token, presenter ? *presenter : *peer_, scope);
    ASSERT_FALSE(accepted.has_value()) << "accepted " << accepted->jti;
    EXPECT_EQ(accepted.error().reason, reason) << accepted.error().message;
    EXPECT_THAT(accepted.error().message, HasSubstr(message_part));
  }

  void ExpectRefused(const std::string& token, PeerTokenRefusal reason,
                     const std::string& message_part, const pki::Certificate* presenter = nullptr,
                     std::string_view scope = "t:write") {
    ExpectRefused(*Verifier(), token, reason, message_part, presenter, scope);
  }

  static std::vector<std::string> Parts(const std::string& token) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1) {
      parts.push_back(token.substr(start, dot - start));
    }
    parts.push_back(token.substr(start));
    return parts;
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::unique_ptr<ca::Authority> authority_;
  std::shared_ptr<const ca::JwsSigner> signer_;
  std::shared_ptr<const ca::JwsSigner> other_signer_;
  std::optional<pki::Certificate> peer_;
  std::optional<pki::Certificate> other_peer_;
};

TEST_F(PeerTokenVerifierTest, Accepts_TokenFromThePinnedSignerPresentedByItsHolder) {
  auto accepted = Verifier()->Accept(Issue("historian", "t:write t:read"), *peer_, "t:write");
  ASSERT_TRUE(accepted.has_value()) << accepted.error().message;
  EXPECT_EQ(accepted->subject, "sensor-1");
  EXPECT_EQ(accepted->audience, "historian");
  EXPECT_EQ(accepted->issuer, "https://localhost");
  EXPECT_EQ(accepted->scopes, (std::vector<std::string>{"t:write", "t:read"}));
  EXPECT_EQ(accepted->expires_at, clock_.Now() + seconds(300));
}

TEST_F(PeerTokenVerifierTest, Rejects_TokenForAnotherAudience) {
  ExpectRefused(Issue("sensor-3"), PeerTokenRefusal::kOtherAudience,
                "is for \"sensor-3\", not this device (\"historian\")");
}

TEST_F(PeerTokenVerifierTest, Rejects_ExpiredTokenBeyondTheSkew) {
  std::string token = Issue();
  auto verifier = Verifier();
  clock_.Advance(seconds(300 + 60));
  EXPECT_TRUE(verifier->Accept(token, *peer_, "t:write")) << "within the skew";
  std::string second = Issue();
  clock_.Advance(seconds(300 + 61));
  ExpectRefused(*verifier, second, PeerTokenRefusal::kExpired, "expired at");
}

TEST_F(PeerTokenVerifierTest, Rejects_TokenFromTheFuture) {
  std::string token = Issue();
  clock_.Advance(-seconds(61));
  ExpectRefused(token, PeerTokenRefusal::kNotYetValid, "in the future");
}

TEST_F(PeerTokenVerifierTest, Rejects_TokenValidTooLong) {
  ExpectRefused(Issue("historian", "t:write", nullptr, seconds(7200)), PeerTokenRefusal::kTooLong,
                "longer than the 3600 s");
}

TEST_F(PeerTokenVerifierTest, Rejects_ReplayedJti) {
  std::string token = Issue();
  auto verifier = Verifier();
  ASSERT_TRUE(verifier->Accept(token, *peer_, "t:write"));
  ExpectRefused(*verifier, token, PeerTokenRefusal::kReplayed, "was already accepted");
}

TEST_F(PeerTokenVerifierTest, ForgetsJtisOnceTheirTokensExpire_AndRefusesWhenFull) {
  auto verifier =
      PeerTokenVerifier::Create({.audience = "historian",
                                 .signer_certificates_pem = signer_->certificate().ToPem(),
                                 .max_replay_entries = 1},
                                clock_);
  ASSERT_TRUE(verifier);
  ASSERT_TRUE((*verifier)->Accept(Issue(), *peer_, "t:write"));
  ExpectRefused(**verifier, Issue(), PeerTokenRefusal::kReplayCacheFull, "its limit");
  clock_.Advance(seconds(300 + 61));
  EXPECT_TRUE((*verifier)->Accept(Issue(), *peer_, "t:write"));
}

TEST_F(PeerTokenVerifierTest, Rejects_TokenSignedByAnotherKey) {
  ExpectRefused(Issue("historian", "t:write", other_signer_), PeerTokenRefusal::kUnknownSigner,
                "not your pinned token signer");
  // Another key under the pinned certificate's x5t#S256.
  std::vector<std::string> genuine = Parts(Issue());
  std::vector<std::string> forged = Parts(Issue("historian", "t:write", other_signer_));
  ExpectRefused(genuine[0] + "." + forged[1] + "." + forged[2], PeerTokenRefusal::kBadSignature,
                "does not verify");
}

TEST_F(PeerTokenVerifierTest, Rejects_TokenPresentedByAnotherDevice) {
  ExpectRefused(Issue(), PeerTokenRefusal::kWrongHolder, "bound to another certificate",
                &*other_peer_);
}

TEST_F(PeerTokenVerifierTest, Rejects_ScopeNotGranted) {
  ExpectRefused(Issue(), PeerTokenRefusal::kScopeNotGranted, "does not grant scope \"t:admin\"",
                nullptr, "t:write t:admin");
}

TEST_F(PeerTokenVerifierTest, Rejects_AlgNoneAndMalformedTokens) {
  std::vector<std::string> parts = Parts(Issue());
  std::string none =
      ossl::Base64UrlEncode(std::string_view(R"({"alg":"none","typ":"devid-peer+jwt"})"));
  ExpectRefused(none + "." + parts[1] + ".", PeerTokenRefusal::kUnsigned, "alg \"none\"");
  ExpectRefused(parts[0] + "." + parts[1] + ".", PeerTokenRefusal::kUnsigned, "no signature");
  ExpectRefused("", PeerTokenRefusal::kMalformed, "three base64url parts");
  ExpectRefused("a.b", PeerTokenRefusal::kMalformed, "three base64url parts");
  ExpectRefused("@@@." + parts[1] + "." + parts[2], PeerTokenRefusal::kMalformed, "header");
  ExpectRefused(std::string(9 * 1024, 'a'), PeerTokenRefusal::kMalformed, "byte limit");
  // A command envelope is not a token (explicit typing, RFC 8725 §3.11).
  ExpectRefused(Issue("historian", "t:write", MakeSigner("devid-command+jws")),
                PeerTokenRefusal::kMalformed, "not a devid peer token");
}

TEST_F(PeerTokenVerifierTest, Rejects_OtherJwsTypesAndClaimsThatAreNotAToken) {
  std::vector<std::string> parts = Parts(Issue());
  ExpectRefused(ossl::Base64UrlEncode(std::string_view(R"({"alg":"ES256","typ":"JWT"})")) + "." +
                    parts[1] + "." + parts[2],
                PeerTokenRefusal::kMalformed, "not a devid peer token");
  // Signed by the pinned key, but without cnf.
  auto raw = signer_->Sign(R"({"iss":"x","sub":"sensor-1","aud":"historian","scope":"t:write",)"
                           R"("jti":"j","iat":1795700000,"exp":1795700300})");
  ASSERT_TRUE(raw);
  ExpectRefused(*raw, PeerTokenRefusal::kMalformed, "exp or cnf");
}

TEST_F(PeerTokenVerifierTest, Create_Rejects_BadOptions) {
  EXPECT_FALSE(PeerTokenVerifier::Create(
      {.signer_certificates_pem = signer_->certificate().ToPem()}, clock_));
  auto no_signer = PeerTokenVerifier::Create({.audience = "historian"}, clock_);
  ASSERT_FALSE(no_signer);
  EXPECT_THAT(no_signer.error().message(), HasSubstr("no PEM certificate"));
  auto skew = PeerTokenVerifier::Create({.audience = "historian",
                                         .signer_certificates_pem = signer_->certificate().ToPem(),
                                         .clock_skew = seconds(301)},
                                        clock_);
  ASSERT_FALSE(skew);
  EXPECT_THAT(skew.error().message(), HasSubstr("clock skew"));
}

}  // namespace
}  // namespace devid::sdk
