#include "pki/sas_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/url.h"
#include "ossl/base64.h"

namespace devid::pki {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Key(std::string_view b64) { return *ossl::Base64Decode(b64); }

nlohmann::json Vectors() {
  std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path() / "testdata" / "sas_vectors.json";
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The protocol notes' DPS vector, captured from the Node SDK.
constexpr std::string_view kDpsKey = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr std::string_view kDpsToken =
    "SharedAccessSignature sr=0ne00000001/registrations/sym-dev-1&sig=f1Zi5X2%2F8wUWT4PTmSPZSX5nh"
    "xsRftZPGRsBTWr8Ykg%3D&skn=registration&se=1795707539";

TEST(SasToken, Accepts_NodeDpsTokenWithRawResource) {
  auto token = ParseSasToken(kDpsToken);
  ASSERT_TRUE(token) << token.error().message();
  EXPECT_EQ(token->resource, "0ne00000001/registrations/sym-dev-1");
  EXPECT_EQ(token->expiry, 1795707539);
  EXPECT_EQ(token->key_name, "registration");
  EXPECT_TRUE(VerifySasSignature(*token, Key(kDpsKey)));
  EXPECT_TRUE(SasResourceMatches(*token, "0NE00000001/registrations/sym-dev-1"));
}

TEST(SasToken, Accepts_EncodedResourceSignedEncoded) {
  std::string sr = "0ne00000001%2Fregistrations%2Fsym-dev-1";
  std::string text = CreateSasToken(Key(kDpsKey), sr, 1795707539, "registration");
  auto token = ParseSasToken(text);
  ASSERT_TRUE(token);
  EXPECT_EQ(token->resource, "0ne00000001/registrations/sym-dev-1");
  EXPECT_TRUE(VerifySasSignature(*token, Key(kDpsKey)));
}

TEST(SasToken, Accepts_LowercaseHexEncodingSignedButRawSent) {
  // The docs say "lower case URL-encoding": a producer may sign the lowercase form and send raw.
  std::string signed_over = "0ne00000001%2fregistrations%2fsym-dev-1";
  std::string sig = SasSignature(Key(kDpsKey), signed_over, 42);
  std::string text = "SharedAccessSignature sr=0ne00000001/registrations/sym-dev-1&sig=" +
                     PercentEncodeComponent(sig, true) + "&se=42&skn=registration";
  auto token = ParseSasToken(text);
  ASSERT_TRUE(token);
  EXPECT_TRUE(VerifySasSignature(*token, Key(kDpsKey)));
}

TEST(SasToken, Accepts_FieldsInAnyOrder) {
  auto token = ParseSasToken(
      "SharedAccessSignature se=1795707539&skn=registration&sig=f1Zi5X2%2F8wUWT4PTmSPZSX5nhxsRftZP"
      "GRsBTWr8Ykg%3D&sr=0ne00000001/registrations/sym-dev-1");
  ASSERT_TRUE(token);
  EXPECT_TRUE(VerifySasSignature(*token, Key(kDpsKey)));
}

TEST(SasToken, Rejects_WrongKey) {
  auto token = ParseSasToken(kDpsToken);
  ASSERT_TRUE(token);
  auto status = VerifySasSignature(*token, Key("iGtdb5zpyHv5J3ldqCw8w7Wo6JqKL7K8bdmLEqHRGQ4="));
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kUnauthenticated);
}

TEST(SasToken, Rejects_TamperedExpiry) {
  std::string text(kDpsToken);
  text.replace(text.find("1795707539"), 10, "1795707540");
  auto token = ParseSasToken(text);
  ASSERT_TRUE(token);
  EXPECT_FALSE(VerifySasSignature(*token, Key(kDpsKey)));
}

TEST(SasToken, Rejects_MissingFields) {
  auto no_se = ParseSasToken("SharedAccessSignature sr=a&sig=YWJjZA%3D%3D");
  ASSERT_FALSE(no_se);
  EXPECT_THAT(no_se.error().message(), HasSubstr("no se"));
  EXPECT_FALSE(ParseSasToken("SharedAccessSignature sr=a&se=1"));
  EXPECT_FALSE(ParseSasToken("SharedAccessSignature sig=YWJjZA%3D%3D&se=1"));
  EXPECT_FALSE(ParseSasToken("SharedAccessSignature sr=a&sig=YWJjZA%3D%3D&se=12x"));
  EXPECT_FALSE(ParseSasToken("SharedAccessSignature sr=a&sig=!!!&se=1"));
  EXPECT_FALSE(ParseSasToken("SharedAccessSignature sr=a&sr=b&sig=YWJjZA%3D%3D&se=1"));
}

TEST(SasToken, Vectors_PositiveFromAzureSdks) {
  nlohmann::json vectors = Vectors();
  int checked = 0;
  for (const auto& v : vectors["positive"]) {
    if (v.contains("expected_sig_base64")) {
      auto key = Key(v["key_base64"].get<std::string>());
      EXPECT_EQ(SasSignature(key, v["sr"].get<std::string>(), v["se"].get<int64_t>()),
                v["expected_sig_base64"].get<std::string>());
      auto token = ParseSasToken(v["expected_token_with_skn"].get<std::string>());
      ASSERT_TRUE(token);
      EXPECT_EQ(token->key_name, v["skn"].get<std::string>());
      EXPECT_TRUE(VerifySasSignature(*token, key));
      ++checked;
    }
    if (v.contains("expected_derived_device_key_base64")) {
      EXPECT_EQ(*DeriveSymmetricKey(v["group_key_base64"].get<std::string>(),
                                    v["registration_id"].get<std::string>()),
                v["expected_derived_device_key_base64"].get<std::string>());
      ++checked;
    }
    if (v.contains("expected_sr_device")) {
      std::string raw = v["host"].get<std::string>() + "/devices/" + v["deviceId"].get<std::string>();
      EXPECT_EQ(PercentEncodeComponent(raw, true), v["expected_sr_device"].get<std::string>());
      EXPECT_EQ(PercentEncodeComponent(v["expected_skn_for_keyname"]["keyName"].get<std::string>(),
                                       true),
                v["expected_skn_for_keyname"]["skn"].get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 3);
}

TEST(SasToken, Vectors_NegativeParseAreRejected) {
  nlohmann::json vectors = Vectors();
  for (const auto& v : vectors["negative_parse"]) {
    auto token = ParseSasToken(v["token"].get<std::string>());
    EXPECT_FALSE(token) << v["why"];
    if (!token) {
      EXPECT_EQ(token.error().code(), ErrorCode::kUnauthenticated);
    }
  }
}

TEST(DeriveSymmetricKey, MatchesProtocolNotesVector) {
  EXPECT_EQ(*DeriveSymmetricKey("7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpS"
                                "rGXBf4eQDnZ+FRKSVJg4A==",
                                "sym-grp-dev-7"),
            "QHNXCHA0Z8gY8OrUtr6oAXJs55pPllbo1jyAqYJDIiY=");
}

TEST(DeriveSymmetricKey, Rejects_NonBase64GroupKey) {
  auto key = DeriveSymmetricKey("not base64!", "dev");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::pki
