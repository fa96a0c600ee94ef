#include "pki/x5t.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace devid::pki {
namespace {

// A certificate's SHA-256 thumbprint and its x5t#S256, computed with the openssl command line:
//   openssl x509 -outform DER | openssl dgst -sha256 -hex            (uppercased)
//   openssl x509 -outform DER | openssl dgst -sha256 -binary | base64 (base64url, unpadded)
constexpr const char* kThumbprint =
    "B2F02C9B838482B72CF77B4F2BC5D28AC3FE1A098E4387FC6377A3EC3B5487BB";
constexpr const char* kX5tS256 = "svAsm4OEgrcs93tPK8XSisP-GgmOQ4f8Y3ej7DtUh7s";

TEST(X5tTest, FromThumbprint_IsTheBase64UrlOfTheDigest) {
  EXPECT_EQ(X5tS256FromThumbprint(kThumbprint), kX5tS256);
  std::string lower(kThumbprint);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(X5tS256FromThumbprint(lower), kX5tS256);
}

TEST(X5tTest, FromThumbprint_RefusesWhatIsNotA256BitHexDigest) {
  EXPECT_EQ(X5tS256FromThumbprint(""), "");
  EXPECT_EQ(X5tS256FromThumbprint("ABCD"), "");
  EXPECT_EQ(X5tS256FromThumbprint(std::string(64, 'G')), "");
  EXPECT_EQ(X5tS256FromThumbprint(std::string(66, 'A')), "");
}

}  // namespace
}  // namespace devid::pki
