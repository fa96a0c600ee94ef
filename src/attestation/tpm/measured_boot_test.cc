// The measured-boot check end to end in software: the verifier's challenge (nonce and AK
// credential) is answered by a software TPM and AK the way a device answers it, then each refusal.

#include "attestation/tpm/measured_boot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ossl/base64.h"
#include "tpm/testing/software_quote.h"

namespace devid::attestation {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using tpm::Bytes;

class MeasuredBootTest : public ::testing::Test {
 protected:
  MeasuredBootTest() : challenge_key_(random_.Bytes(32)) {
    policy_.bank = tpm::Alg::kSha256;
    policy_.pcrs = {0, 1, 7};
    policy_.digests = {Bytes(32, 0xee), *tpm::PcrCompositeDigest(tpm::Alg::kSha256, Pcrs())};
  }

  static std::vector<Bytes> Pcrs() { return {Bytes(32, 1), Bytes(32, 2), Bytes(32, 3)}; }

  // Answer plays the device: activate the AK credential with tpm (the AK must be named as the
  // challenge named it), quote pcrs with nonce.
  QuoteEvidence Answer(const tpm::testing::SoftwareTpm& tpm,
                       const tpm::testing::SoftwareAttestationKey& ak, const QuoteChallenge& c,
                       const std::vector<Bytes>& pcrs, std::span<const uint8_t> nonce) {
    QuoteEvidence e;
    e.attestation_key = ak.Base64();
    auto blob = ossl::Base64Decode(c.attestation_key_credential);
    tpm::Reader r(*blob);
    auto id_object = r.B2("id");
    auto secret = r.B2("secret");
    auto recovered = tpm.ActivateCredential(*ak.ak().Name(), *id_object, *secret);
    e.attestation_key_credential = ossl::Base64Encode(recovered.value_or(Bytes(32, 0)));
    tpm::testing::QuoteBytes q =
        ak.Quote(nonce, tpm::PcrSelection{tpm::Alg::kSha256, {0, 1, 7}}, pcrs);
    e.quote = ossl::Base64Encode(q.attest);
    e.quote_signature = ossl::Base64Encode(q.signature);
    return e;
  }

  QuoteChallenge Challenge(const std::vector<uint8_t>& key) {
    auto c = MakeQuoteChallenge(device_.ek(), ak_.ak(), key, random_);
    EXPECT_TRUE(c) << c.error().message();
    return *c;
  }

  static Bytes Nonce(const QuoteChallenge& c) {
    auto nonce = ossl::Base64Decode(c.nonce);
    return Bytes(nonce->begin(), nonce->end());
  }

  SecureRandom random_;
  std::vector<uint8_t> challenge_key_;
  tpm::PcrPolicy policy_;
  tpm::testing::SoftwareTpm device_;
  tpm::testing::SoftwareAttestationKey ak_;
};

TEST_F(MeasuredBootTest, Accepts_FreshQuoteOfAllowedPcrsByBoundAk) {
  QuoteChallenge c = Challenge(challenge_key_);
  EXPECT_EQ(Nonce(c).size(), 32u);
  Status ok = VerifyQuote(policy_, Answer(device_, ak_, c, Pcrs(), Nonce(c)), challenge_key_);
  EXPECT_TRUE(ok) << ok.error().message();
}

TEST_F(MeasuredBootTest, Rejects_PcrDigestMismatch) {
  QuoteChallenge c = Challenge(challenge_key_);
  std::vector<Bytes> extended = Pcrs();
  extended[2][0] ^= 1;
  Status s = VerifyQuote(policy_, Answer(device_, ak_, c, extended, Nonce(c)), challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(s.error().message(), StartsWith("measured boot: PCR digest mismatch"));
}

TEST_F(MeasuredBootTest, Rejects_QuoteWithoutNonce) {
  QuoteChallenge c = Challenge(challenge_key_);
  Status s = VerifyQuote(policy_, Answer(device_, ak_, c, Pcrs(), {}), challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("the quote carries no nonce"));
}

TEST_F(MeasuredBootTest, Rejects_QuoteWithStaleNonce) {
  QuoteChallenge old = Challenge(random_.Bytes(32));
  QuoteChallenge c = Challenge(challenge_key_);
  QuoteEvidence e = Answer(device_, ak_, c, Pcrs(), Nonce(old));
  Status s = VerifyQuote(policy_, e, challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("stale or replayed"));
}

TEST_F(MeasuredBootTest, Rejects_AkFromAnotherTpm) {
  // The AK credential is wrapped to the enrolled EK: another TPM holding the AK cannot activate
  // it, and its own credential (for its own EK) is not this challenge's.
  tpm::testing::SoftwareTpm other;
  QuoteChallenge c = Challenge(challenge_key_);
  Status s = VerifyQuote(policy_, Answer(other, ak_, c, Pcrs(), Nonce(c)), challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("not bound to the endorsement key"));

  auto own = MakeQuoteChallenge(other.ek(), ak_.ak(), random_.Bytes(32), random_);
  s = VerifyQuote(policy_, Answer(other, ak_, *own, Pcrs(), Nonce(c)), challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("not bound to the endorsement key"));
}

TEST_F(MeasuredBootTest, Rejects_QuoteByAnotherAkThanTheBoundOne) {
  tpm::testing::SoftwareAttestationKey other_ak;
  QuoteChallenge c = Challenge(challenge_key_);
  QuoteEvidence e = Answer(device_, ak_, c, Pcrs(), Nonce(c));
  tpm::testing::QuoteBytes q =
      other_ak.Quote(Nonce(c), tpm::PcrSelection{tpm::Alg::kSha256, {0, 1, 7}}, Pcrs());
  e.quote = ossl::Base64Encode(q.attest);
  e.quote_signature = ossl::Base64Encode(q.signature);
  Status s = VerifyQuote(policy_, e, challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("signature does not verify"));
}

TEST_F(MeasuredBootTest, Rejects_OtherPcrSelectionAndMissingEvidence) {
  QuoteChallenge c = Challenge(challenge_key_);
  tpm::PcrPolicy narrower = policy_;
  narrower.pcrs = {0, 7};
  Status s = VerifyQuote(narrower, Answer(device_, ak_, c, Pcrs(), Nonce(c)), challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("requires sha256:0,7"));

  QuoteEvidence missing = Answer(device_, ak_, c, Pcrs(), Nonce(c));
  missing.quote.clear();
  s = VerifyQuote(policy_, missing, challenge_key_);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("must carry tpm.attestationKey"));
}

TEST(AttestationKey, Rejects_KeysThatAreNoAttestationKeys) {
  tpm::testing::SoftwareTpm device;
  auto ek = ParseAttestationKey(device.EkBase64());  // a decryption key
  ASSERT_FALSE(ek);
  EXPECT_THAT(ek.error().message(), HasSubstr("restricted, fixedTPM signing key"));
  EXPECT_FALSE(ParseAttestationKey("not base64!"));
}

}  // namespace
}  // namespace devid::attestation
