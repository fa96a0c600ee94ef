#include "ca/verified_path_memo.h"

#include <gtest/gtest.h>

namespace devid::ca {
namespace {

using std::chrono::seconds;
using TimePoint = VerifiedPathMemo::TimePoint;

const TimePoint kNow = TimePoint(seconds(1'800'000'000));

TEST(VerifiedPathMemoTest, ForgetsNothingItWasNotTold) {
  VerifiedPathMemo memo;
  EXPECT_FALSE(memo.Verified("AB", kNow));
}

TEST(VerifiedPathMemoTest, RemembersForTheTtl) {
  VerifiedPathMemo memo(seconds(60));
  memo.Remember("AB", kNow, kNow + seconds(3600));
  EXPECT_TRUE(memo.Verified("AB", kNow));
  EXPECT_TRUE(memo.Verified("AB", kNow + seconds(59)));
  EXPECT_FALSE(memo.Verified("AB", kNow + seconds(60)));
  EXPECT_FALSE(memo.Verified("CD", kNow));
}

TEST(VerifiedPathMemoTest, NeverPastTheCertificatesNotAfter) {
  VerifiedPathMemo memo(seconds(60));
  memo.Remember("AB", kNow, kNow + seconds(10));
  EXPECT_TRUE(memo.Verified("AB", kNow + seconds(9)));
  EXPECT_FALSE(memo.Verified("AB", kNow + seconds(10)));
}

TEST(VerifiedPathMemoTest, AClockSetBackInvalidates) {
  VerifiedPathMemo memo(seconds(60));
  memo.Remember("AB", kNow, kNow + seconds(3600));
  EXPECT_FALSE(memo.Verified("AB", kNow - seconds(1)));
}

TEST(VerifiedPathMemoTest, PastCapacityForgetsEverything) {
  VerifiedPathMemo memo(seconds(60), /*capacity=*/2);
  memo.Remember("A", kNow, kNow + seconds(3600));
  memo.Remember("B", kNow, kNow + seconds(3600));
  memo.Remember("C", kNow, kNow + seconds(3600));
  EXPECT_FALSE(memo.Verified("A", kNow));
  EXPECT_FALSE(memo.Verified("B", kNow));
  EXPECT_TRUE(memo.Verified("C", kNow));
}

}  // namespace
}  // namespace devid::ca
