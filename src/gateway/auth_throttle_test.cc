#include "gateway/auth_throttle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "base/clock.h"

namespace devid::gateway {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class AuthThrottleTest : public ::testing::Test {
 protected:
  FakeClock clock_{std::chrono::system_clock::time_point(seconds(1'800'000'000))};
  AuthThrottle throttle_{
      clock_, {.slow_after = 2, .refuse_after = 5, .refuse_for = seconds(60), .max_entries = 3}};
};

TEST_F(AuthThrottleTest, Allows_FirstFailuresWithoutDelay) {
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  throttle_.RecordFailure("dev-1");
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
}

TEST_F(AuthThrottleTest, Slows_WithDoublingDelayThenRefuses) {
  throttle_.RecordFailure("dev-1");
  throttle_.RecordFailure("dev-1");  // 2 = slow_after: wait 1 s
  auto early = throttle_.Check("dev-1");
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_THAT(early.error().message(), HasSubstr("2 failed authentications; retry in 1 s"));
  clock_.Advance(seconds(1));
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  throttle_.RecordFailure("dev-1");  // 3: wait 2 s
  clock_.Advance(seconds(1));
  EXPECT_FALSE(throttle_.Check("dev-1").has_value());
  clock_.Advance(seconds(1));
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  throttle_.RecordFailure("dev-1");  // 4: wait 4 s
  clock_.Advance(seconds(4));
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  throttle_.RecordFailure("dev-1");  // 5 = refuse_after: refused for 60 s
  clock_.Advance(seconds(59));
  auto refused = throttle_.Check("dev-1");
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().message(), HasSubstr("5 failed authentications; retry in 1 s"));
  clock_.Advance(seconds(1));
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  EXPECT_EQ(throttle_.size(), 0u);  // expired and forgotten
}

TEST_F(AuthThrottleTest, Refusal_LastsFromTheLatestFailure) {
  for (int i = 0; i < 5; ++i) throttle_.RecordFailure("dev-1");
  clock_.Advance(seconds(30));
  throttle_.RecordFailure("dev-1");  // tried again while refused
  clock_.Advance(seconds(59));
  EXPECT_FALSE(throttle_.Check("dev-1").has_value());
  clock_.Advance(seconds(1));
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
}

TEST_F(AuthThrottleTest, Success_ForgetsFailuresAndOtherKeysAreUnaffected) {
  for (int i = 0; i < 5; ++i) throttle_.RecordFailure("attacker");
  throttle_.RecordFailure("dev-1");
  throttle_.RecordFailure("dev-1");
  EXPECT_TRUE(throttle_.Check("dev-2").has_value());
  EXPECT_FALSE(throttle_.Check("attacker").has_value());
  throttle_.RecordSuccess("dev-1");
  EXPECT_TRUE(throttle_.Check("dev-1").has_value());
  EXPECT_EQ(throttle_.size(), 1u);
}

TEST_F(AuthThrottleTest, Bounds_EntriesByForgettingTheOldestFailure) {
  throttle_.RecordFailure("a");
  throttle_.RecordFailure("a");
  clock_.Advance(seconds(1));
  throttle_.RecordFailure("b");
  throttle_.RecordFailure("b");
  throttle_.RecordFailure("c");
  throttle_.RecordFailure("d");  // evicts a, whose latest failure is the oldest
  EXPECT_EQ(throttle_.size(), 3u);
  EXPECT_TRUE(throttle_.Check("a").has_value());
  EXPECT_FALSE(throttle_.Check("b").has_value());
}

}  // namespace
}  // namespace devid::gateway
