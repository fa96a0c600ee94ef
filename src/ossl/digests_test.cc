#include "ossl/digests.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <span>

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

TEST(DigestsTest, Sha256Md_AndSha1Md_AreFetchedFromAProvider) {
  // A legacy EVP_sha256() has no provider: each use of it fetches one again.
  EXPECT_EQ(EVP_MD_get0_provider(EVP_sha256()), nullptr);
  EXPECT_NE(EVP_MD_get0_provider(Sha256Md()), nullptr);
  EXPECT_NE(EVP_MD_get0_provider(Sha1Md()), nullptr);
  EXPECT_EQ(Sha256Md(), Sha256Md()) << "fetched once";
}

}  // namespace
}  // namespace devid::ossl
