// TPMS_ATTEST and TPMT_SIGNATURE parsing, the quote signature check and the PCR policy text form.

#include "tpm/quote.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tpm/pcr_policy.h"
#include "tpm/testing/software_quote.h"

namespace devid::tpm {
namespace {

using ::testing::HasSubstr;
using testing::MarshalQuote;
using testing::SoftwareAttestationKey;

const PcrSelection kSelection{Alg::kSha256, {0, 1, 7}};

std::vector<Bytes> PcrValues() { return {Bytes(32, 0x11), Bytes(32, 0x22), Bytes(32, 0x77)}; }

TEST(Quote, Parses_EveryField) {
  Bytes nonce(32, 0xab);
  Bytes digest = *PcrCompositeDigest(Alg::kSha256, PcrValues());
  auto quote = ParseQuote(MarshalQuote(nonce, kSelection, digest));
  ASSERT_TRUE(quote) << quote.error().message();
  EXPECT_EQ(quote->extra_data, nonce);
  EXPECT_EQ(quote->qualified_signer, (Bytes{0x00, 0x0b, 1, 2, 3}));
  EXPECT_EQ(quote->reset_count, 1u);
  EXPECT_EQ(quote->clock, 1234u);
  EXPECT_TRUE(quote->safe);
  EXPECT_EQ(quote->firmware_version, uint64_t{0x20191023} << 32);
  ASSERT_EQ(quote->pcr_select.size(), 1u);
  EXPECT_EQ(quote->pcr_select[0], kSelection);
  EXPECT_EQ(quote->pcr_digest, digest);
}

TEST(Quote, Rejects_MalformedAttestation) {
  Bytes digest(32, 1);
  auto not_tpm = ParseQuote(MarshalQuote({}, kSelection, digest, 0x12345678));
  ASSERT_FALSE(not_tpm);
  EXPECT_THAT(not_tpm.error().message(), HasSubstr("TPM_GENERATED_VALUE"));

  Bytes certify = MarshalQuote({}, kSelection, digest);
  certify[5] = 0x17;  // TPM_ST_ATTEST_CERTIFY
  auto wrong_type = ParseQuote(certify);
  ASSERT_FALSE(wrong_type);
  EXPECT_THAT(wrong_type.error().message(), HasSubstr("TPM_ST_ATTEST_QUOTE"));

  Bytes trailing = MarshalQuote({}, kSelection, digest);
  trailing.push_back(0);
  EXPECT_THAT(ParseQuote(trailing).error().message(), HasSubstr("1 bytes after"));

  Bytes short_quote = MarshalQuote({}, kSelection, digest);
  short_quote.resize(short_quote.size() - 5);
  EXPECT_FALSE(ParseQuote(short_quote));
  EXPECT_FALSE(ParseQuote({}));
}

TEST(QuoteSignature, Verifies_WithTheSigningAk) {
  SoftwareAttestationKey ak;
  testing::QuoteBytes q = ak.Quote(Bytes(32, 5), kSelection, PcrValues());
  auto signature = ParseSignature(q.signature);
  ASSERT_TRUE(signature) << signature.error().message();
  EXPECT_EQ(signature->scheme, Alg::kRsassa);
  EXPECT_EQ(signature->hash, Alg::kSha256);
  EXPECT_TRUE(VerifyQuoteSignature(ak.ak(), q.attest, *signature));
}

TEST(QuoteSignature, Rejects_TamperedQuoteAndAnotherKey) {
  SoftwareAttestationKey ak, other;
  testing::QuoteBytes q = ak.Quote(Bytes(32, 5), kSelection, PcrValues());
  Signature signature = *ParseSignature(q.signature);
  Bytes tampered = q.attest;
  tampered.back() ^= 1;
  auto bad = VerifyQuoteSignature(ak.ak(), tampered, signature);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(bad.error().message(), HasSubstr("does not verify"));
  EXPECT_FALSE(VerifyQuoteSignature(other.ak(), q.attest, signature));
  Signature pss = signature;
  pss.scheme = Alg::kRsapss;  // not the AK's fixed scheme
  EXPECT_EQ(VerifyQuoteSignature(ak.ak(), q.attest, pss).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(QuoteSignature, Rejects_UnsupportedSchemesAndTrailingBytes) {
  Bytes ecdsa = Writer().U16(0x0018).U16(0x000b).B2(Bytes(32, 1)).B2(Bytes(32, 2)).Take();
  EXPECT_THAT(ParseSignature(ecdsa).error().message(), HasSubstr("RSASSA and RSAPSS"));
  Bytes trailing = Writer().U16(0x0014).U16(0x000b).B2(Bytes(256, 1)).U16(0).Take();
  EXPECT_THAT(ParseSignature(trailing).error().message(), HasSubstr("trailing"));
  Bytes sha3 = Writer().U16(0x0014).U16(0x0027).B2(Bytes(256, 1)).Take();
  EXPECT_FALSE(ParseSignature(sha3));
}

TEST(PcrPolicy, RoundTrips_TextForm) {
  PcrPolicy p{Alg::kSha256, {0, 2, 7}, {Bytes(32, 0xab), Bytes(32, 0x01)}};
  std::string text = FormatPcrPolicy(p);
  EXPECT_EQ(text.substr(0, 14), "sha256:0,2,7:a");
  auto parsed = ParsePcrPolicy(text);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(*parsed, p);
}

TEST(PcrPolicy, Rejects_InvalidPolicies) {
  std::string digest(64, 'a');
  EXPECT_THAT(ParsePcrPolicy("").error().message(), HasSubstr("<bank>:<pcrs>:<digests>"));
  EXPECT_THAT(ParsePcrPolicy("md5:0:" + digest).error().message(), HasSubstr("md5"));
  EXPECT_THAT(ParsePcrPolicy("sha256:24:" + digest).error().message(), HasSubstr("PCR 24"));
  EXPECT_THAT(ParsePcrPolicy("sha256:7,0:" + digest).error().message(), HasSubstr("ascending"));
  EXPECT_THAT(ParsePcrPolicy("sha256:x:" + digest).error().message(), HasSubstr("not a number"));
  EXPECT_THAT(ParsePcrPolicy("sha256:0:abcd").error().message(), HasSubstr("32"));
  EXPECT_THAT(ParsePcrPolicy("sha256:0:zz").error().message(), HasSubstr("not hex"));
}

}  // namespace
}  // namespace devid::tpm
