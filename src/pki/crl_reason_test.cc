#include "pki/crl_reason.h"

#include <gtest/gtest.h>

namespace devid::pki {
namespace {

TEST(CrlReasonTest, ParsesNamesCaseInsensitivelyAndNumbers) {
  EXPECT_EQ(ParseCrlReason("keyCompromise").value(), kKeyCompromise);
  EXPECT_EQ(ParseCrlReason("KEYCOMPROMISE").value(), kKeyCompromise);
  EXPECT_EQ(ParseCrlReason("9").value(), kPrivilegeWithdrawn);
  EXPECT_EQ(CrlReasonName(kSuperseded), "superseded");
}

TEST(CrlReasonTest, RefusesUnusedAndUnknownCodes) {
  for (std::string_view bad : {"7", "8", "removeFromCRL", "11", "-1", "", "stolen", "1x"}) {
    auto reason = ParseCrlReason(bad);
    ASSERT_FALSE(reason) << bad;
    EXPECT_EQ(reason.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(CrlReasonName(7), "");
}

}  // namespace
}  // namespace devid::pki
