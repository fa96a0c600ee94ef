#include "base/expiring_memo.h"

#include <gtest/gtest.h>

namespace devid {
namespace {

using std::chrono::seconds;
using TimePoint = ExpiringMemo<int>::TimePoint;

const TimePoint kNow = TimePoint(seconds(1'800'000'000));

TEST(ExpiringMemoTest, KnowsNothingItWasNotTold) {
  ExpiringMemo<int> memo;
  EXPECT_FALSE(memo.Find("AB", kNow));
}

TEST(ExpiringMemoTest, RemembersForTheTtl) {
  ExpiringMemo<int> memo(seconds(60));
  memo.Remember("AB", 7, kNow, kNow + seconds(3600));
  EXPECT_EQ(memo.Find("AB", kNow), 7);
  EXPECT_EQ(memo.Find("AB", kNow + seconds(59)), 7);
  EXPECT_FALSE(memo.Find("AB", kNow + seconds(60)));
  EXPECT_FALSE(memo.Find("CD", kNow));
}

TEST(ExpiringMemoTest, NeverPastNotAfter) {
  ExpiringMemo<int> memo(seconds(60));
  memo.Remember("AB", 7, kNow, kNow + seconds(10));
  EXPECT_TRUE(memo.Find("AB", kNow + seconds(9)));
  EXPECT_FALSE(memo.Find("AB", kNow + seconds(10)));
}

TEST(ExpiringMemoTest, AClockSetBackInvalidates) {
  ExpiringMemo<int> memo(seconds(60));
  memo.Remember("AB", 7, kNow, kNow + seconds(3600));
  EXPECT_FALSE(memo.Find("AB", kNow - seconds(1)));
}

TEST(ExpiringMemoTest, ReplacesAnEntry) {
  ExpiringMemo<int> memo(seconds(60));
  memo.Remember("AB", 7, kNow, kNow + seconds(3600));
  memo.Remember("AB", 8, kNow + seconds(30), kNow + seconds(3600));
  EXPECT_EQ(memo.Find("AB", kNow + seconds(80)), 8);
}

TEST(ExpiringMemoTest, PastCapacityForgetsEverything) {
  ExpiringMemo<int> memo(seconds(60), /*capacity=*/2);
  memo.Remember("A", 1, kNow, kNow + seconds(3600));
  memo.Remember("B", 2, kNow, kNow + seconds(3600));
  memo.Remember("C", 3, kNow, kNow + seconds(3600));
  EXPECT_FALSE(memo.Find("A", kNow));
  EXPECT_FALSE(memo.Find("B", kNow));
  EXPECT_EQ(memo.Find("C", kNow), 3);
}

// RememberIfAbsent tells one caller per ttl to act (the X.509 verifier records a presented
// certificate at most once a minute this way).
TEST(ExpiringMemoTest, RememberIfAbsent_SaysYesOncePerTtl) {
  ExpiringMemo<bool> memo(seconds(60));
  const TimePoint never = TimePoint::max();
  EXPECT_TRUE(memo.RememberIfAbsent("AA", true, kNow, never));
  EXPECT_FALSE(memo.RememberIfAbsent("AA", true, kNow + seconds(59), never));
  EXPECT_TRUE(memo.RememberIfAbsent("BB", true, kNow + seconds(59), never));
  EXPECT_TRUE(memo.RememberIfAbsent("AA", true, kNow + seconds(60), never));
  // A clock set back does not silence a key.
  EXPECT_TRUE(memo.RememberIfAbsent("AA", true, kNow, never));
}

TEST(ExpiringMemoTest, Forget_DropsOneKey) {
  ExpiringMemo<bool> memo(seconds(60));
  const TimePoint never = TimePoint::max();
  EXPECT_TRUE(memo.RememberIfAbsent("AA", true, kNow, never));
  EXPECT_TRUE(memo.RememberIfAbsent("BB", true, kNow, never));
  memo.Forget("AA");
  EXPECT_TRUE(memo.RememberIfAbsent("AA", true, kNow, never));
  EXPECT_FALSE(memo.RememberIfAbsent("BB", true, kNow, never));
}

}  // namespace
}  // namespace devid
