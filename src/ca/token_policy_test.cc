#include "ca/token_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devid::ca {
namespace {

using ::testing::HasSubstr;

TokenPolicy SensorsToHistorian() {
  TokenPolicy policy;
  policy.services = {"historian"};
  policy.rules.push_back(
      {.from_groups = {"sensors"}, .to_services = {"historian"}, .scopes = {"telemetry:write"}});
  policy.rules.push_back({.from_devices = {"*"}, .to_devices = {"clock-1"}, .scopes = {"time"}});
  return policy;
}

const TokenParty kSensor{.id = "sensor-1", .group = "sensors"};
const TokenParty kHistorian{.id = "historian", .service = true};

TEST(TokenPolicyTest, Allows_PairAndScopeARuleGrants) {
  EXPECT_TRUE(AuthorizeToken(SensorsToHistorian(), kSensor, kHistorian, {"telemetry:write"}));
  EXPECT_TRUE(AuthorizeToken(SensorsToHistorian(), {.id = "anyone"}, {.id = "clock-1"}, {"time"}));
}

TEST(TokenPolicyTest, Denies_ByDefault) {
  auto denied = AuthorizeToken(TokenPolicy{}, kSensor, kHistorian, {"telemetry:write"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kPermissionDenied);
}

TEST(TokenPolicyTest, Denies_ScopeNoRuleGrants) {
  auto denied =
      AuthorizeToken(SensorsToHistorian(), kSensor, kHistorian, {"telemetry:write", "admin"});
  ASSERT_FALSE(denied);
  EXPECT_THAT(denied.error().message(), HasSubstr("scope \"admin\" for service historian"));
}

TEST(TokenPolicyTest, Denies_RequesterOutsideTheGroup) {
  EXPECT_FALSE(AuthorizeToken(SensorsToHistorian(), {.id = "sensor-9", .group = "cameras"},
                              kHistorian, {"telemetry:write"}));
  // An individual enrollment (no group) matches no group rule.
  EXPECT_FALSE(
      AuthorizeToken(SensorsToHistorian(), {.id = "sensor-9"}, kHistorian, {"telemetry:write"}));
}

TEST(TokenPolicyTest, Denies_DeviceNamedLikeAService) {
  // to_services rules never match a device audience of the same name.
  EXPECT_FALSE(
      AuthorizeToken(SensorsToHistorian(), kSensor, {.id = "historian"}, {"telemetry:write"}));
}

TEST(TokenPolicyTest, SplitScope_WordsInOrderWithoutDuplicates) {
  auto words = SplitScope("a b:c a");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"a", "b:c"}));
}

TEST(TokenPolicyTest, SplitScope_Rejects_EmptyDoubleSpaceAndQuotes) {
  EXPECT_FALSE(SplitScope(""));
  EXPECT_FALSE(SplitScope("a  b"));
  EXPECT_FALSE(SplitScope(" a"));
  EXPECT_FALSE(SplitScope("a\"b"));
  EXPECT_FALSE(SplitScope("a\\b"));
  EXPECT_FALSE(SplitScope("caf\xc3\xa9"));
}

TEST(TokenPolicyTest, Validate_Accepts_ThePolicy) {
  EXPECT_TRUE(ValidateTokenPolicy(SensorsToHistorian()));
}

TEST(TokenPolicyTest, Validate_Rejects_RuleWithoutRequester) {
  TokenPolicy policy = SensorsToHistorian();
  policy.rules[1].from_devices.clear();
  auto invalid = ValidateTokenPolicy(policy);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(invalid.error().message(), HasSubstr("tokens.rule[1]: needs from_devices"));
}

TEST(TokenPolicyTest, Validate_Rejects_RuleWithoutAudienceOrScope) {
  TokenPolicy policy = SensorsToHistorian();
  policy.rules[0].to_services.clear();
  EXPECT_THAT(ValidateTokenPolicy(policy).error().message(), HasSubstr("needs to_devices"));
  policy = SensorsToHistorian();
  policy.rules[0].scopes.clear();
  EXPECT_THAT(ValidateTokenPolicy(policy).error().message(),
              HasSubstr("tokens.rule[0].scopes: grants no scope"));
}

TEST(TokenPolicyTest, Validate_Rejects_BadScopeWordAndUnknownService) {
  TokenPolicy policy = SensorsToHistorian();
  policy.rules[0].scopes = {"two words"};
  EXPECT_THAT(ValidateTokenPolicy(policy).error().message(), HasSubstr("is not a scope word"));
  policy = SensorsToHistorian();
  policy.rules[0].to_services = {"archive"};
  EXPECT_THAT(ValidateTokenPolicy(policy).error().message(),
              HasSubstr("\"archive\" is not in tokens.services"));
}

}  // namespace
}  // namespace devid::ca
