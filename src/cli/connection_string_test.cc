#include "cli/connection_string.h"

#include <gtest/gtest.h>

namespace devid::cli {
namespace {

TEST(ParseServiceConnectionString, Accepts_FieldsInAnyOrderAndKeyPadding) {
  auto parsed = ParseServiceConnectionString(
      "SharedAccessKey=abc=;HostName=localhost;Other=x;SharedAccessKeyName=owner;");
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->host_name, "localhost");
  EXPECT_EQ(parsed->key_name, "owner");
  EXPECT_EQ(parsed->key, "abc=");
}

TEST(ParseServiceConnectionString, Rejects_MissingKeyWithoutEchoingIt) {
  auto parsed = ParseServiceConnectionString("HostName=h;SharedAccessKeyName=owner");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message().find("SharedAccessKey is missing"), std::string::npos);

  parsed = ParseServiceConnectionString("HostName=h;SharedAccessKeyName=n;secretwithoutequals");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().message().find("secret"), std::string::npos);
}

TEST(ParseEndpoint, Accepts_NameIpv4AndIpv6) {
  auto e = ParseEndpoint("https://localhost:8443/");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 8443);
  e = ParseEndpoint("https://[::1]:9000");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9000);
  e = ParseEndpoint("https://dps.example.com");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->port, 443);
}

TEST(ParseEndpoint, Rejects_OtherSchemesPathsAndBadPorts) {
  for (const char* bad : {"http://localhost:1", "https://localhost:1/x", "https://localhost:0",
                          "https://localhost:65536", "https://localhost:", "https://:8443",
                          "https://[::1", "https://localhost:12ab"}) {
    auto e = ParseEndpoint(bad);
    EXPECT_FALSE(e) << bad;
    if (!e) {
      EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace devid::cli
