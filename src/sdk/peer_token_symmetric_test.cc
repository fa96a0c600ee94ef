// Symmetric (Kerberos-shaped) peer tokens: the authority's issuer and sealing make the token,
// device B opens it with its own SAS key and checks device A's proof over B's challenge.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/token_issuer.h"
#include "api/token_session_key.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/testing/test_csr.h"
#include "ca/testing/test_token_signer.h"
#include "ca/token_signer.h"
#include "devid/credential.h"
#include "devid/peer_token.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace devid::sdk {
namespace {

using ::testing::HasSubstr;

constexpr const char* kDoorKey = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr const char* kOtherKey = "iGtdb5zpyHv5J3ldqCw8w7Wo6JqKL7K8bdmLEqHRGQ4=";

class SymmetricPeerTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
    auto signer = ca::testing::MakeTestTokenSigner(*authority_);
    ASSERT_TRUE(signer) << signer.error().message();
    signer_ = std::move(*signer);
    auto door = SymmetricKeyCredential(kDoorKey);
    ASSERT_TRUE(door);
    door_key_ = std::move(*door);
    random_.Fill(session_key_.bytes.data(), session_key_.bytes.size());
  }

  // Issue makes the token the authority gives sensor-1 for aud, with session_key_ sealed under
  // sealing_key (base64) as the key of device sealed_for.
  std::string Issue(const std::string& aud = "door-1", const char* sealing_key = kDoorKey,
                    const std::string& sealed_for = "door-1") {
    std::array<uint8_t, 32> kek = api::PeerKek(*ossl::Base64Decode(sealing_key), sealed_for);
    auto sealed = api::SealSessionKey(kek, session_key_.bytes);
    EXPECT_TRUE(sealed) << sealed.error().message();
    auto signer = signer_;
    api::TokenIssuer issuer(
        [signer]() -> Result<std::shared_ptr<const ca::JwsSigner>> { return signer; }, clock_,
        random_, {.issuer = "https://localhost"});
    auto issued = issuer.Issue(
        {.subject = "sensor-1", .audience = aud, .scope = "door:open", .cnf_jwe = *sealed});
    EXPECT_TRUE(issued) << issued.error().message();
    return issued ? issued->token : "";
  }

  std::unique_ptr<PeerTokenVerifier> Verifier(const std::string& audience = "door-1") {
    auto verifier = PeerTokenVerifier::Create(
        {.audience = audience, .signer_certificates_pem = signer_->certificate().ToPem()}, clock_);
    EXPECT_TRUE(verifier) << verifier.error().message();
    return verifier ? std::move(*verifier) : nullptr;
  }

  std::expected<VerifiedPeerToken, PeerTokenError> Present(PeerTokenVerifier& verifier,
                                                           const std::string& token,
                                                           const PeerSessionKey& key) {
    auto challenge = NewPeerChallenge();
    auto proof = ProveWithSessionKey(key, challenge, "sensor-1", "door-1");
    return verifier.AcceptWithSessionKey(token, challenge, proof, *door_key_, "door:open");
  }

  void ExpectRefused(const std::expected<VerifiedPeerToken, PeerTokenError>& result,
                     PeerTokenRefusal reason, const std::string& message_part) {
    ASSERT_FALSE(result.has_value()) << "accepted " << result->jti;
    EXPECT_EQ(result.error().reason, reason) << result.error().message;
    EXPECT_THAT(result.error().message, HasSubstr(message_part));
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::unique_ptr<ca::Authority> authority_;
  std::shared_ptr<const ca::JwsSigner> signer_;
  std::unique_ptr<SasCredential> door_key_;
  PeerSessionKey session_key_;
};

TEST_F(SymmetricPeerTokenTest, Accepts_ProofWithTheSessionKey) {
  auto accepted = Present(*Verifier(), Issue(), session_key_);
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->subject, "sensor-1");
  EXPECT_EQ(accepted->audience, "door-1");
  EXPECT_EQ(accepted->scopes, std::vector<std::string>{"door:open"});
}

TEST_F(SymmetricPeerTokenTest, Accepts_ADeviceKeyDerivedFromItsGroup) {
  // door-1's key as a group-enrollment device holds it; the authority derives the same.
  auto derived = pki::DeriveSymmetricKey(kOtherKey, "door-1");
  ASSERT_TRUE(derived);
  auto credential = SymmetricKeyCredential(*derived);
  ASSERT_TRUE(credential);
  door_key_ = std::move(*credential);
  auto accepted = Present(*Verifier(), Issue("door-1", derived->c_str()), session_key_);
  EXPECT_TRUE(accepted) << accepted.error().message;
}

TEST_F(SymmetricPeerTokenTest, Rejects_ProofWithAnotherSessionKey) {
  PeerSessionKey guessed;
  guessed.bytes.fill(7);
  ExpectRefused(Present(*Verifier(), Issue(), guessed), PeerTokenRefusal::kWrongHolder,
                "not made with the session key");
}

TEST_F(SymmetricPeerTokenTest, Rejects_ProofOverAnotherChallenge) {
  auto verifier = Verifier();
  auto recorded = NewPeerChallenge();
  auto proof = ProveWithSessionKey(session_key_, recorded, "sensor-1", "door-1");
  auto challenge = NewPeerChallenge();
  ExpectRefused(verifier->AcceptWithSessionKey(Issue(), challenge, proof, *door_key_, ""),
                PeerTokenRefusal::kWrongHolder, "not made with the session key");
}

TEST_F(SymmetricPeerTokenTest, Rejects_ProofForAnotherPair) {
  auto challenge = NewPeerChallenge();
  auto proof = ProveWithSessionKey(session_key_, challenge, "sensor-2", "door-1");
  ExpectRefused(Verifier()->AcceptWithSessionKey(Issue(), challenge, proof, *door_key_, ""),
                PeerTokenRefusal::kWrongHolder, "not made with the session key");
}

TEST_F(SymmetricPeerTokenTest, Rejects_TokenForAnotherAudience) {
  ExpectRefused(Present(*Verifier(), Issue("door-2", kDoorKey, "door-2"), session_key_),
                PeerTokenRefusal::kOtherAudience, "is for \"door-2\"");
}

TEST_F(SymmetricPeerTokenTest, Rejects_SessionKeySealedForAnotherKey) {
  ExpectRefused(Present(*Verifier(), Issue("door-1", kOtherKey), session_key_),
                PeerTokenRefusal::kSealedForAnother, "does not open with this device's key");
}

TEST_F(SymmetricPeerTokenTest, Rejects_TamperedCnf) {
  // Another sealed key spliced into the signed claims breaks the signature.
  std::string token = Issue();
  size_t first = token.find('.');
  size_t second = token.find('.', first + 1);
  auto payload = ossl::Base64UrlDecode(token.substr(first + 1, second - first - 1));
  ASSERT_TRUE(payload);
  auto claims = nlohmann::json::parse(std::string(payload->begin(), payload->end()));
  std::array<uint8_t, 32> kek = api::PeerKek(*ossl::Base64Decode(kDoorKey), "door-1");
  PeerSessionKey mine;
  mine.bytes.fill(9);
  claims["cnf"]["jwe"] = *api::SealSessionKey(kek, mine.bytes);
  std::string tampered = token.substr(0, first + 1) + ossl::Base64UrlEncode(claims.dump()) +
                         token.substr(second);
  ExpectRefused(Present(*Verifier(), tampered, mine), PeerTokenRefusal::kBadSignature, "");
}

TEST_F(SymmetricPeerTokenTest, Rejects_ReplayedToken) {
  auto verifier = Verifier();
  std::string token = Issue();
  ASSERT_TRUE(Present(*verifier, token, session_key_));
  ExpectRefused(Present(*verifier, token, session_key_), PeerTokenRefusal::kReplayed,
                "already accepted");
}

TEST_F(SymmetricPeerTokenTest, Rejects_ExpiredToken) {
  std::string token = Issue();
  clock_.Advance(std::chrono::seconds(300 + 61));
  ExpectRefused(Present(*Verifier(), token, session_key_), PeerTokenRefusal::kExpired, "expired");
}

TEST_F(SymmetricPeerTokenTest, Rejects_ConfirmationMethodOfTheOtherKind) {
  // A symmetric token over mTLS, and a certificate-bound token with a session-key proof.
  auto verifier = Verifier();
  auto key = ca::testing::TestKey("P-256");
  auto certificate = authority_->Issue(ca::kDeviceClientProfile,
                                       {.common_name = "sensor-1", .public_key = key.get()});
  ASSERT_TRUE(certificate);
  auto over_tls = verifier->Accept(Issue(), *certificate, "");
  ExpectRefused(over_tls, PeerTokenRefusal::kMalformed, "cnf is not {\"x5t#S256\"}");
  auto signer = signer_;
  api::TokenIssuer issuer(
      [signer]() -> Result<std::shared_ptr<const ca::JwsSigner>> { return signer; }, clock_,
      random_, {.issuer = "https://localhost"});
  auto bound = issuer.Issue(
      {.subject = "sensor-1", .audience = "door-1", .scope = "door:open", .x5t_s256 = "abc"});
  ASSERT_TRUE(bound);
  ExpectRefused(Present(*verifier, bound->token, session_key_), PeerTokenRefusal::kMalformed,
                "cnf is not {\"jwe\"}");
}

TEST_F(SymmetricPeerTokenTest, SessionKey_ReadsOnly32BytesOfBase64) {
  EXPECT_FALSE(PeerSessionKey::FromBase64("c2hvcnQ="));
  EXPECT_FALSE(PeerSessionKey::FromBase64("not base64!"));
  auto key = PeerSessionKey::FromBase64(session_key_.ToBase64());
  ASSERT_TRUE(key);
  EXPECT_EQ(key->bytes, session_key_.bytes);
}

}  // namespace
}  // namespace devid::sdk
