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

}  // namespace
}  // namespace devid::gateway
