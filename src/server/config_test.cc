#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devid::server {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, CaSection_ParsesAndTrimsTheBaseUrl) {
  auto config = ParseConfig(R"(
[ca]
base_url = "https://ca.example.com:8443/"
key_algorithm = "ecdsa-p384"
issuing_key_uri = "pkcs11:token=ca;object=issuing"
passphrase_env = "DEVID_CA_PASS"
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->ca.base_url, "https://ca.example.com:8443");
  EXPECT_EQ(config->ca.key_algorithm, "ecdsa-p384");
  EXPECT_EQ(config->ca.root_key_uri, "");
  EXPECT_EQ(config->ca.issuing_key_uri, "pkcs11:token=ca;object=issuing");
  EXPECT_EQ(config->ca.passphrase_env, "DEVID_CA_PASS");
}

TEST(ConfigTest, CaSection_Defaults) {
  auto config = ParseConfig("");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->ca.base_url, "");
  EXPECT_EQ(config->ca.key_algorithm, "ecdsa-p256");
}

TEST(ConfigTest, CaSection_RefusesBadValues) {
  struct Case {
    const char* toml;
    const char* message;
  };
  for (const Case& c : {
           Case{"[ca]\nbase_url = \"ftp://x\"\n", "ca.base_url: must be an http"},
           Case{"[ca]\nkey_algorithm = \"rsa-1024\"\n", "ca.key_algorithm"},
           Case{"[ca]\nroot_key = \"file:x\"\n", "ca.root_key: unknown setting"},
           Case{"[ca]\nbase_url = 5\n", "ca.base_url: must be a string"},
           Case{"ca = 1\n", "ca: must be a table"},
       }) {
    auto config = ParseConfig(c.toml);
    ASSERT_FALSE(config) << c.toml;
    EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(config.error().message(), HasSubstr(c.message)) << c.toml;
  }
}

TEST(ConfigTest, RequestClientCertificate_DefaultsToTrue_AndTakesOnlyABoolean) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_TRUE(defaults->server.request_client_certificate);
  auto off = ParseConfig("[server]\nrequest_client_certificate = false\n");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->server.request_client_certificate);
  auto text = ParseConfig("[server]\nrequest_client_certificate = \"yes\"\n");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(text.error().message(),
              HasSubstr("server.request_client_certificate: must be true or false"));
}

}  // namespace
}  // namespace devid::server
