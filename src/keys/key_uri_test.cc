#include "keys/key_uri.h"

#include <gtest/gtest.h>

namespace devid::keys {
namespace {

TEST(KeyUriTest, Parses_Pkcs11PathAndQueryAttributes) {
  // RFC 7512 §3 example style.
  auto uri = ParseKeyUri(
      "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;object=my-key;id=%01%ff"
      "?pin-source=file:/etc/token&module-path=/lib/m.so");
  ASSERT_TRUE(uri.has_value()) << uri.error().message();
  EXPECT_EQ(uri->scheme, "pkcs11");
  EXPECT_EQ(uri->PathAttribute("token"), "The Software PKCS#11 Softtoken");
  EXPECT_EQ(uri->PathAttribute("object"), "my-key");
  EXPECT_EQ(uri->PathAttribute("id"), std::string("\x01\xff"));
  EXPECT_EQ(uri->QueryAttribute("pin-source"), "file:/etc/token");
  EXPECT_EQ(uri->QueryAttribute("module-path"), "/lib/m.so");
  EXPECT_FALSE(uri->PathAttribute("serial").has_value());
}

TEST(KeyUriTest, RoundTrips_ThroughToString) {
  auto uri = ParseKeyUri("pkcs11:object=a%20b;token=t;id=%00%10?module-path=/x/y.so");
  ASSERT_TRUE(uri.has_value());
  auto again = ParseKeyUri(uri->ToString());
  ASSERT_TRUE(again.has_value()) << uri->ToString();
  EXPECT_EQ(again->path_attributes, uri->path_attributes);
  EXPECT_EQ(again->query_attributes, uri->query_attributes);
}

TEST(KeyUriTest, Redacts_PinValue) {
  auto uri = ParseKeyUri("pkcs11:token=t;object=o?pin-value=123456");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->QueryAttribute("pin-value"), "123456");
  EXPECT_EQ(uri->ToString().find("123456"), std::string::npos);
}

TEST(KeyUriTest, Parses_FileForms) {
  for (const char* text : {"file:/var/lib/devid/ca.key", "file:///var/lib/devid/ca.key",
                           "file://localhost/var/lib/devid/ca.key"}) {
    auto uri = ParseKeyUri(text);
    ASSERT_TRUE(uri.has_value()) << text;
    EXPECT_EQ(uri->path, "/var/lib/devid/ca.key") << text;
  }
  auto relative = ParseKeyUri("file:keys/a%20b.key?passphrase-file=/run/pass");
  ASSERT_TRUE(relative.has_value());
  EXPECT_EQ(relative->path, "keys/a b.key");
  EXPECT_EQ(relative->QueryAttribute("passphrase-file"), "/run/pass");
}

TEST(KeyUriTest, Rejects_Malformed) {
  for (const char* text :
       {"nokey", "http://x/y", "pkcs11:token=a;token=b", "pkcs11:tokn=a", "pkcs11:token=%zz",
        "pkcs11:token=%4", "pkcs11:token", "file:", "file://host/k.pem", "file:/k?passphrase=x",
        "pkcs11:object=a?pin-value=1&pin-value=2"}) {
    auto uri = ParseKeyUri(text);
    ASSERT_FALSE(uri.has_value()) << text;
    EXPECT_EQ(uri.error().code(), ErrorCode::kInvalidArgument) << text;
  }
}

TEST(KeyUriTest, Parses_Tpm2HandleAndTcti_AndRoundTrips) {
  auto uri = ParseKeyUri("tpm2:handle=0x81000010?tcti=swtpm:host=127.0.0.1,port=2321");
  ASSERT_TRUE(uri.has_value()) << uri.error().message();
  EXPECT_EQ(uri->scheme, "tpm2");
  EXPECT_EQ(Tpm2Handle(*uri), 0x81000010u);
  EXPECT_EQ(uri->QueryAttribute("tcti"), "swtpm:host=127.0.0.1,port=2321");
  EXPECT_EQ(uri->ToString(), "tpm2:handle=0x81000010?tcti=swtpm:host=127.0.0.1,port=2321");
  auto bare = ParseKeyUri("tpm2:handle=0x817FFFFF");
  ASSERT_TRUE(bare.has_value()) << bare.error().message();
  EXPECT_EQ(Tpm2Handle(*bare), 0x817fffffu);
  EXPECT_FALSE(bare->QueryAttribute("tcti").has_value());
}

TEST(KeyUriTest, Rejects_Tpm2WithoutAPersistentOwnerHandle) {
  for (const char* text :
       {"tpm2:", "tpm2:?tcti=device:/dev/tpmrm0", "tpm2:handle=", "tpm2:handle=81000010",
        "tpm2:handle=0x8100001", "tpm2:handle=0x810000100", "tpm2:handle=0x8100001g",
        "tpm2:handle=0x80000010", "tpm2:handle=0x81800000", "tpm2:handle=0x01c00002",
        "tpm2:handle=0x81000010;handle=0x81000011", "tpm2:object=k",
        "tpm2:handle=0x81000010?pin-value=1", "tpm2:handle=0x81000010?tcti=a&tcti=b"}) {
    auto uri = ParseKeyUri(text);
    ASSERT_FALSE(uri.has_value()) << text;
    EXPECT_EQ(uri.error().code(), ErrorCode::kInvalidArgument) << text;
  }
  auto uri = ParseKeyUri("tpm2:handle=0x81800000");
  ASSERT_FALSE(uri.has_value());
  EXPECT_NE(uri.error().message().find("0x81000000-0x817fffff"), std::string::npos)
      << uri.error().message();
}

TEST(KeyUriTest, Accepts_VendorAttributes) {
  EXPECT_TRUE(ParseKeyUri("pkcs11:token=a;x-vendor=1?x-other=2").has_value());
}

}  // namespace
}  // namespace devid::keys
