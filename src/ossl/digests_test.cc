#include "ossl/digests.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <span>
#include <thread>
#include <vector>

#include "base/hex.h"

namespace devid::ossl {
namespace {

std::string HexDigest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out, &length, md, nullptr), 1);
  return HexEncode(std::span<const uint8_t>(out, length));
}

// FIPS 180-4 examples ("abc").
TEST(DigestsTest, Sha256Md_AndSha1Md_HashTheStandardExample) {
  EXPECT_EQ(HexDigest(Sha256Md(), "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexDigest(Sha1Md(), "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(DigestsTest, Sha256Md_IsOneFetchSharedByThreads) {
  std::vector<const EVP_MD*> seen(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = Sha256Md(); });
  }
  for (std::thread& t : threads) t.join();
  for (const EVP_MD* md : seen) EXPECT_EQ(md, Sha256Md());
}

}  // namespace
}  // namespace devid::ossl
