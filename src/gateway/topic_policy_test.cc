#include "gateway/topic_policy.h"

#include <gtest/gtest.h>

namespace devid::gateway {
namespace {

constexpr TopicAccess kPub = TopicAccess::kPublish;
constexpr TopicAccess kSub = TopicAccess::kSubscribe;
constexpr TopicAccess kRecv = TopicAccess::kReceive;

TEST(TopicPolicyTest, Allows_WhatTheIotHubSdkDoes) {
  // Protocol notes §5.2, in the SDK's order.
  EXPECT_TRUE(IsTopicAllowed("dev-1", kSub, "devices/dev-1/messages/devicebound/#"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kSub, "$iothub/methods/POST/#"));
  EXPECT_TRUE(IsTopicAllowed(
      "dev-1", kPub, "devices/dev-1/messages/events/%24.mid=msg-1&%24.ct=application%2Fjson"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kPub, "devices/dev-1/messages/events/"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kSub, "$iothub/twin/res/#"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kPub, "$iothub/twin/GET/?$rid=cbbb96ac"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kSub, "$iothub/twin/PATCH/properties/desired/#"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kPub, "$iothub/twin/PATCH/properties/reported/?$rid=e5"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kPub, "$iothub/methods/res/200/?$rid=42"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kRecv, "$iothub/methods/POST/reboot/?$rid=42"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", kRecv, "devices/dev-1/messages/devicebound/%24.mid=c2d"));
  EXPECT_TRUE(IsTopicAllowed("dev-1", TopicAccess::kUnsubscribe, "anything/#"));
}

TEST(TopicPolicyTest, Denies_OtherDevicesTopics) {
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "devices/dev-2/messages/events/"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kSub, "devices/dev-2/messages/devicebound/#"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kRecv, "devices/dev-2/messages/devicebound/x"));
  // A device ID that is a prefix of another's.
  EXPECT_FALSE(IsTopicAllowed("dev", kPub, "devices/dev-1/messages/events/"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "devices/dev-1x/messages/events/"));
}

TEST(TopicPolicyTest, Denies_WildcardsAboveTheDevicesRoots) {
  for (const char* filter :
       {"#", "+/#", "devices/#", "devices/+/messages/devicebound/#", "devices/dev-1/#",
        "devices/dev-1/messages/#", "$iothub/#", "$iothub/twin/#", "$iothub/+/res/#", "$SYS/#",
        "devices/dev-1/messages/events/#"}) {
    EXPECT_FALSE(IsTopicAllowed("dev-1", kSub, filter)) << filter;
  }
}

TEST(TopicPolicyTest, Denies_PublishingWhereOnlyTheBackEndMay) {
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "devices/dev-1/messages/devicebound/x"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "$iothub/twin/res/200/?$rid=1"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "$iothub/methods/POST/reboot/?$rid=1"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "$iothub/twin/PATCH/properties/desired/?$version=2"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "devices/dev-1/messages/events"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "devices/dev-1/messages/events/#"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, "telemetry"));
  EXPECT_FALSE(IsTopicAllowed("dev-1", kPub, ""));
}

TEST(TopicPolicyTest, Denies_DeviceIdsThatWidenTopics) {
  EXPECT_FALSE(IsTopicAllowed("+", kSub, "devices/+/messages/devicebound/#"));
  EXPECT_FALSE(IsTopicAllowed("#", kPub, "devices/#/messages/events/"));
  EXPECT_FALSE(IsTopicAllowed("a/b", kPub, "devices/a/b/messages/events/"));
  EXPECT_FALSE(IsTopicAllowed("", kPub, "devices//messages/events/"));
  EXPECT_FALSE(IsValidDeviceId(std::string(129, 'a')));
  EXPECT_TRUE(IsValidDeviceId(std::string(128, 'a')));
}

TEST(TopicPolicyTest, Applies_ACustomLayout) {
  TopicLayout layout{.publish_roots = {"site/{deviceId}/telemetry"},
                     .receive_roots = {"site/{deviceId}/commands", "$broadcast"}};
  EXPECT_TRUE(IsTopicAllowed(layout, "dev-1", kPub, "site/dev-1/telemetry/t"));
  EXPECT_TRUE(IsTopicAllowed(layout, "dev-1", kSub, "site/dev-1/commands/#"));
  EXPECT_TRUE(IsTopicAllowed(layout, "dev-1", kRecv, "$broadcast/firmware"));
  EXPECT_FALSE(IsTopicAllowed(layout, "dev-1", kPub, "site/dev-2/telemetry/t"));
  EXPECT_FALSE(IsTopicAllowed(layout, "dev-1", kPub, "devices/dev-1/messages/events/"));
  EXPECT_FALSE(IsTopicAllowed(layout, "dev-1", kSub, "site/+/commands/#"));
  EXPECT_FALSE(IsTopicAllowed(layout, "dev-1", kPub, "$broadcast/firmware"));
}

TEST(TopicPolicyTest, ParseTopicRoots_RefusesBadTemplatesNamingThem) {
  auto parsed = ParseTopicRoots("publish_topics", "a/{deviceId}/b  $c");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(*parsed, (std::vector<std::string>{"a/{deviceId}/b", "$c"}));
  for (const auto& [list, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "no topic template given"},
           {"devices/#", "\"devices/#\" holds a wildcard"},
           {"devices/+/x", "holds a wildcard"},
           {"/a/{deviceId}", "has an empty topic level"},
           {"a//{deviceId}", "has an empty topic level"},
           {"a/{deviceId}/", "has an empty topic level"},
           {"a/{deviceId}x", "braces only as a whole level"},
           {"a/{device}", "braces only as a whole level"},
           {"telemetry", "\"telemetry\" has no {deviceId} level"},
       }) {
    auto bad = ParseTopicRoots("publish_topics", list);
    ASSERT_FALSE(bad.has_value()) << list;
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.error().message().find("plugin_opt_publish_topics"), std::string::npos);
    EXPECT_NE(bad.error().message().find(why), std::string::npos) << bad.error().message();
  }
}

TEST(TopicPolicyTest, BackEnd_ReadsEveryDevicesTelemetry) {
  const TopicLayout hub = TopicLayout::IotHub();
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, kSub, "devices/+/messages/events/#"));
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, kSub, "devices/dev-1/messages/events/#"));
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, kRecv, "devices/dev-1/messages/events/%24.mid=1"));
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, kRecv, "devices/dev-1/messages/events/"));
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, kPub, "devices/dev-1/messages/devicebound/%24.mid=c"));
  EXPECT_TRUE(IsBackEndTopicAllowed(hub, TopicAccess::kUnsubscribe, "#"));
}

TEST(TopicPolicyTest, BackEnd_DeniedEverythingElse) {
  const TopicLayout hub = TopicLayout::IotHub();
  for (const char* filter :
       {"#", "+/#", "devices/#", "devices/+/#", "devices/+/messages/#", "devices/+/messages/+/#",
        "devices/+/messages/devicebound/#", "devices/#/messages/events/#", "$iothub/#",
        "$iothub/twin/GET/#", "devices/+/messages/events", "other/dev-1/messages/events/#"}) {
    EXPECT_FALSE(IsBackEndTopicAllowed(hub, kSub, filter)) << filter;
  }
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kPub, "devices/dev-1/messages/events/x"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kPub, "devices/+/messages/devicebound/x"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kPub, "devices//messages/devicebound/x"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kPub, "devices/dev-1/messages/devicebound"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kPub, "$iothub/methods/POST/reboot/?$rid=1"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kRecv, "devices/dev-1/messages/devicebound/x"));
  EXPECT_FALSE(IsBackEndTopicAllowed(hub, kRecv, "$iothub/twin/GET/?$rid=1"));
}

TEST(TopicPolicyTest, BackEnd_FollowsACustomLayout) {
  const TopicLayout layout{.publish_roots = {"fleet/{deviceId}/up"},
                           .receive_roots = {"fleet/{deviceId}/down"}};
  EXPECT_TRUE(IsBackEndTopicAllowed(layout, kSub, "fleet/+/up/#"));
  EXPECT_TRUE(IsBackEndTopicAllowed(layout, kPub, "fleet/dev-1/down/cmd"));
  EXPECT_FALSE(IsBackEndTopicAllowed(layout, kSub, "devices/+/messages/events/#"));
  EXPECT_FALSE(IsBackEndTopicAllowed(layout, kPub, "fleet/dev-1/up/x"));
}

}  // namespace
}  // namespace devid::gateway
