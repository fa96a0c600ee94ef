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

TEST(ConfigTest, X509Section_ParsesCrlSettings_AndDefaultsToFailClosed) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->x509.crl_unavailable, "reject");
  EXPECT_TRUE(defaults->x509.fetch_crls);
  auto config = ParseConfig(R"(
[x509]
crl_files = ["a.crl", "b.pem"]
fetch_crls = false
crl_unavailable = "accept"
crl_request_wait_ms = 100
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->x509.crl_files, (std::vector<std::string>{"a.crl", "b.pem"}));
  EXPECT_FALSE(config->x509.fetch_crls);
  EXPECT_EQ(config->x509.crl_unavailable, "accept");
  EXPECT_EQ(config->x509.crl_request_wait_ms, 100);
  for (const char* bad : {"[x509]\ncrl_unavailable = \"maybe\"\n", "[x509]\ncrl_poll_ms = 0\n",
                          "[x509]\ncrl_url = \"x\"\n"}) {
    auto refused = ParseConfig(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_THAT(refused.error().message(), HasSubstr("x509.")) << bad;
  }
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

TEST(ConfigTest, RevocationListen_DefaultsToNone_AndTakesOnlyAnAddress) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->server.revocation_listen, "");
  auto set = ParseConfig("[server]\nrevocation_listen = \":8080\"\n");
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->server.revocation_listen, ":8080");
  auto bad = ParseConfig("[server]\nrevocation_listen = \"8080\"\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("server.revocation_listen"));
}

TEST(ConfigTest, SettingsRefreshSeconds_DefaultsToFive_AndRefusesOutOfRange) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->store.settings_refresh_seconds, 5);
  auto one = ParseConfig("[store]\nsettings_refresh_seconds = 1\n");
  ASSERT_TRUE(one) << one.error().message();
  EXPECT_EQ(one->store.settings_refresh_seconds, 1);
  for (const char* toml : {"[store]\nsettings_refresh_seconds = 0\n",
                           "[store]\nsettings_refresh_seconds = 3601\n",
                           "[store]\nsettings_refresh_seconds = \"5\"\n"}) {
    auto refused = ParseConfig(toml);
    ASSERT_FALSE(refused) << toml;
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(refused.error().message(),
                HasSubstr("store.settings_refresh_seconds: must be an integer from 1 to 3600"));
  }
}

TEST(ConfigTest, DeviceTpmSettings_DefaultAndParse) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->device.tpm_challenge_ttl_seconds, 300);
  EXPECT_FALSE(defaults->device.tpm_require_ek_certificate);
  EXPECT_EQ(defaults->device.tpm_ek_roots_file, "");
  auto set = ParseConfig(
      "[device]\ntpm_challenge_ttl_seconds = 60\ntpm_require_ek_certificate = true\n"
      "tpm_ek_roots_file = \"ek-roots.pem\"\n");
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->device.tpm_challenge_ttl_seconds, 60);
  EXPECT_TRUE(set->device.tpm_require_ek_certificate);
  EXPECT_EQ(set->device.tpm_ek_roots_file, "ek-roots.pem");
  auto zero = ParseConfig("[device]\ntpm_challenge_ttl_seconds = 0\n");
  ASSERT_FALSE(zero);
  EXPECT_THAT(zero.error().message(),
              HasSubstr("device.tpm_challenge_ttl_seconds: must be an integer from 1 to 3600"));
}

TEST(ConfigTest, TokensSection_ParsesThePolicy_AndDeniesByDefault) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->tokens.ttl_seconds, 300);
  EXPECT_TRUE(defaults->tokens.policy.rules.empty());
  auto config = ParseConfig(R"(
[ca]
token_signer_key_uri = "pkcs11:token=ca;object=tokens"
[tokens]
ttl_seconds = 120
services = ["historian"]
[[tokens.rule]]
from_groups = ["sensors"]
to_services = ["historian"]
scopes = ["telemetry:write"]
[[tokens.rule]]
from_devices = ["gateway-1"]
to_groups = ["sensors"]
scopes = ["config:read", "config:write"]
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->ca.token_signer_key_uri, "pkcs11:token=ca;object=tokens");
  EXPECT_EQ(config->tokens.ttl_seconds, 120);
  EXPECT_EQ(config->tokens.policy.services, std::vector<std::string>{"historian"});
  ASSERT_EQ(config->tokens.policy.rules.size(), 2u);
  EXPECT_EQ(config->tokens.policy.rules[0].from_groups, std::vector<std::string>{"sensors"});
  EXPECT_EQ(config->tokens.policy.rules[1].scopes,
            (std::vector<std::string>{"config:read", "config:write"}));
}

TEST(ConfigTest, TokensSection_RefusesBadValues) {
  struct Case {
    const char* toml;
    const char* message;
  };
  for (const Case& c : {
           Case{"[tokens]\nttl_seconds = 0\n", "tokens.ttl_seconds: must be an integer"},
           Case{"[tokens]\nrule = 1\n", "tokens.rule: must be [[tokens.rule]] tables"},
           Case{"[[tokens.rule]]\nfrom = [\"a\"]\n", "tokens.rule[0].from: unknown setting"},
           Case{"[[tokens.rule]]\nfrom_devices = [\"a\"]\nto_devices = [\"b\"]\n",
                "tokens.rule[0].scopes: grants no scope"},
           Case{"[[tokens.rule]]\nfrom_devices = [\"a\"]\nto_services = [\"s\"]\n"
                "scopes = [\"x\"]\n",
                "\"s\" is not in tokens.services"},
       }) {
    auto config = ParseConfig(c.toml);
    ASSERT_FALSE(config) << c.toml;
    EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(config.error().message(), HasSubstr(c.message)) << c.toml;
  }
}

}  // namespace
}  // namespace devid::server
