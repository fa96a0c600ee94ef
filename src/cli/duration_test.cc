#include "cli/duration.h"

#include <gtest/gtest.h>

namespace devid::cli {
namespace {

TEST(ParseDuration, Accepts_EachUnitAndPlainSeconds) {
  EXPECT_EQ(ParseDuration("30d").value(), 30 * 86400);
  EXPECT_EQ(ParseDuration("12h").value(), 12 * 3600);
  EXPECT_EQ(ParseDuration("90m").value(), 90 * 60);
  EXPECT_EQ(ParseDuration("45s").value(), 45);
  EXPECT_EQ(ParseDuration("3600").value(), 3600);
  EXPECT_EQ(ParseDuration("0s").value(), 0);
}

TEST(ParseDuration, Rejects_MalformedNegativeAndHugeValues) {
  for (std::string_view text : {"", "h", "-5s", "+5s", "1.5h", "24 h", "24H", "5w", "5hs", "x5s",
                                "1099511627777s", "99999999999999999999"}) {
    auto parsed = ParseDuration(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().message(),
              "\"" + std::string(text) + "\" is not a duration (30d, 12h, 90m, 45s)");
  }
}

}  // namespace
}  // namespace devid::cli
