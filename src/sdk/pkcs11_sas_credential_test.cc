// The SDK's PKCS #11 SAS credential on SoftHSM2: a key imported from base64 signs the same SAS
// MACs as the software credential holding that key, and bad input is refused before the token
// is touched.

#include <gtest/gtest.h>

#include <string>

#include "devid/credential.h"
#include "keys/testing/softhsm_token.h"

namespace devid::sdk {
namespace {

using keys::testing::SoftHsmToken;

// A 64-byte key, base64: the size of a DPS individual enrollment's key.
constexpr char kKey[] =
    "dGhpcyBpcyBhIDY0LWJ5dGUgRFBTIGtleSBmb3IgdGhlIFBLQ1MgIzExIFNBUyBjcmVkZW50aWFsIHRlc3QhIQ==";

class Pkcs11SasCredentialTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(token_.ok()) << token_.init_output(); }
  std::string Uri(const std::string& object) const {
    return std::string("pkcs11:token=") + SoftHsmToken::kLabel + ";object=" + object +
           "?pin-source=" + token_.pin_file();
  }
  SoftHsmToken token_;
};

TEST_F(Pkcs11SasCredentialTest, Signs_AsTheSoftwareCredentialWithTheSameKey) {
  auto stored = ImportPkcs11SasKey(Uri("sas"), kKey, DEVID_SOFTHSM2_MODULE);
  ASSERT_TRUE(stored.has_value()) << stored.error().message();
  EXPECT_NE(stored->find("id="), std::string::npos) << *stored;
  auto token = OpenPkcs11SasCredential(*stored, DEVID_SOFTHSM2_MODULE);
  ASSERT_TRUE(token.has_value()) << token.error().message();
  auto software = SymmetricKeyCredential(kKey);
  ASSERT_TRUE(software.has_value());
  std::string message = "0ne00000A0%2Fregistrations%2Fdevice-1\n1767225600";
  auto from_token = (*token)->HmacSha256(message);
  ASSERT_TRUE(from_token.has_value()) << from_token.error().message();
  EXPECT_EQ(*from_token, *(*software)->HmacSha256(message));
}

TEST_F(Pkcs11SasCredentialTest, Rejects_KeyThatIsNotBase64) {
  auto stored = ImportPkcs11SasKey(Uri("sas"), "not base64!", DEVID_SOFTHSM2_MODULE);
  ASSERT_FALSE(stored.has_value());
  EXPECT_EQ(stored.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(stored.error().message().find("not base64"), std::string::npos);
  EXPECT_FALSE(OpenPkcs11SasCredential(Uri("sas"), DEVID_SOFTHSM2_MODULE).has_value());
}

TEST_F(Pkcs11SasCredentialTest, Rejects_UriWithoutModule) {
  auto opened = OpenPkcs11SasCredential(Uri("sas"));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(opened.error().message().find("no default PKCS #11 module"), std::string::npos)
      << opened.error().message();
}

TEST_F(Pkcs11SasCredentialTest, Rejects_MalformedUri) {
  auto opened = OpenPkcs11SasCredential("pkcs11:token=%zz", DEVID_SOFTHSM2_MODULE);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::sdk
