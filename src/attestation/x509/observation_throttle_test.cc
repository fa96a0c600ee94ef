#include "attestation/x509/observation_throttle.h"

#include <gtest/gtest.h>

namespace devid::attestation {
namespace {

using namespace std::chrono_literals;

TEST(ObservationThrottleTest, RecordsOncePerInterval_PerCertificate) {
  ObservationThrottle throttle(60s);
  const auto t0 = std::chrono::system_clock::from_time_t(1795700000);
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0));
  EXPECT_FALSE(throttle.ShouldRecord("aa", t0 + 59s));
  EXPECT_TRUE(throttle.ShouldRecord("bb", t0 + 59s));
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0 + 60s));
  // A clock set back does not silence a certificate.
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0));
}

TEST(ObservationThrottleTest, RecordsAgain_AfterForget_OrPastCapacity) {
  ObservationThrottle throttle(60s, /*capacity=*/2);
  const auto t0 = std::chrono::system_clock::from_time_t(1795700000);
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0));
  throttle.Forget("aa");
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0));
  EXPECT_TRUE(throttle.ShouldRecord("bb", t0));
  EXPECT_TRUE(throttle.ShouldRecord("cc", t0));  // over capacity: everything forgotten
  EXPECT_TRUE(throttle.ShouldRecord("aa", t0));
}

}  // namespace
}  // namespace devid::attestation
