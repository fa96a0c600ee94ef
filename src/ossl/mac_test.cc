#include "ossl/mac.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/hex.h"

namespace devid::ossl {
namespace {

std::vector<uint8_t> Bytes(std::string_view text) { return {text.begin(), text.end()}; }

std::string Hex(const Sha256Digest& digest) { return HexEncode(digest); }

// RFC 4231 §4.2 and §4.3 (test cases 1 and 2).
TEST(MacTest, HmacSha256_MatchesRfc4231) {
  EXPECT_EQ(Hex(HmacSha256(std::vector<uint8_t>(20, 0x0b), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex(HmacSha256(Bytes("Jefe"), "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(MacTest, HmacSha256_TakesAnEmptyKeyAndMessage) {
  // HMAC-SHA256("", ""), as Python's hmac.new(b"", b"", hashlib.sha256) gives it.
  EXPECT_EQ(Hex(HmacSha256({}, "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(MacTest, HmacSha256_GivesEachThreadItsOwnContext) {
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&results, i] {
      for (int n = 0; n < 200; ++n)
        results[i] = Hex(HmacSha256(Bytes("Jefe"), "what do ya want for nothing?"));
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& r : results) {
    EXPECT_EQ(r, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
}

}  // namespace
}  // namespace devid::ossl
