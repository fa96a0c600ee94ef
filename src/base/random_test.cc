#include "base/random.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace devid {
namespace {

TEST(SecureRandomTest, Uuid_IsVersion4InCanonicalForm) {
  SecureRandom random;
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string uuid = random.Uuid();
    EXPECT_TRUE(std::regex_match(
        uuid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << uuid;
    seen.insert(uuid);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(SecureRandomTest, Fill_NeverRepeatsSmallOrLargeDraws) {
  SecureRandom random;
  std::set<std::vector<uint8_t>> seen;
  for (int i = 0; i < 200; ++i) seen.insert(random.Bytes(16));
  for (int i = 0; i < 20; ++i) seen.insert(random.Bytes(1024));
  EXPECT_EQ(seen.size(), 220u);
}

}  // namespace
}  // namespace devid
