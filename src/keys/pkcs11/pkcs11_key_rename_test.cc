// Deleting and relabelling key pairs in a PKCS #11 token (SoftHSM2), which a renewal with a new
// key uses to put the new key under the old key's name: both halves go or move together, keys
// keep their protection, and every refusal leaves the token as it was.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/testing/softhsm_token.h"

namespace devid::keys {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunShell;
using testing::SoftHsmToken;

class Pkcs11KeyRenameTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(token_.ok()) << token_.init_output(); }

  KeyUri Uri(std::string_view object) const {
    auto uri = ParseKeyUri(std::string("pkcs11:token=") + SoftHsmToken::kLabel +
                           ";object=" + std::string(object) + "?pin-source=" + token_.pin_file());
    EXPECT_TRUE(uri.has_value());
    return *uri;
  }

  std::unique_ptr<Key> MakeKey(std::string_view object) {
    auto key = store_.Create(Uri(object), KeyAlgorithm::kEcdsaP256);
    EXPECT_TRUE(key.has_value()) << key.error().message();
    return key ? std::move(*key) : nullptr;
  }

  // Listing is pkcs11-tool's listing of the token's key objects, public and private.
  std::string Listing() const {
    std::string output;
    EXPECT_EQ(RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                           " --token-label " + SoftHsmToken::kLabel + " --login --pin " +
                           SoftHsmToken::kPin + " --list-objects",
                       &output),
              0)
        << output;
    return output;
  }

  SoftHsmToken token_;  // first: SOFTHSM2_CONF must be set before the module loads
  Pkcs11KeyStore store_{DEVID_SOFTHSM2_MODULE};
};

bool SamePublicKey(const Key& a, const Key& b) {
  return EVP_PKEY_eq(a.public_key(), b.public_key()) == 1;
}

TEST_F(Pkcs11KeyRenameTest, DeleteKey_RemovesBothHalves_AndLeavesOtherKeys) {
  auto doomed = MakeKey("doomed");
  auto kept = MakeKey("kept");
  ASSERT_TRUE(doomed && kept);
  ASSERT_TRUE(store_.DeleteKey(Uri("doomed")).has_value());

  auto gone = store_.Load(Uri("doomed"));
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  std::string listing = Listing();
  EXPECT_THAT(listing, Not(HasSubstr("label:      doomed")));
  EXPECT_THAT(listing, HasSubstr("label:      kept"));
  // A handle loaded before the deletion cannot sign with the destroyed key.
  std::vector<uint8_t> message = {1, 2, 3};
  EXPECT_FALSE(doomed->Sign(message).has_value());
  auto loaded = store_.Load(Uri("kept"));
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  EXPECT_TRUE((*loaded)->Sign(message).has_value());
}

TEST_F(Pkcs11KeyRenameTest, DeleteKey_Rejects_MissingKey_AndTheTokenStays) {
  ASSERT_TRUE(MakeKey("present"));
  std::string before = Listing();
  auto refused = store_.DeleteKey(Uri("absent"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(refused.error().message(), HasSubstr("no private key matches"));
  EXPECT_EQ(Listing(), before);
}

TEST_F(Pkcs11KeyRenameTest, RelabelKey_MovesBothHalves_KeepingKeyAndProtection) {
  auto original = MakeKey("device-key.next");
  ASSERT_TRUE(original);
  ASSERT_TRUE(store_.RelabelKey(Uri("device-key.next"), "device-key").has_value());

  auto old_name = store_.Load(Uri("device-key.next"));
  ASSERT_FALSE(old_name.has_value());
  EXPECT_EQ(old_name.error().code(), ErrorCode::kNotFound);
  auto moved = store_.Load(Uri("device-key"));
  ASSERT_TRUE(moved.has_value()) << moved.error().message();
  EXPECT_TRUE(SamePublicKey(**moved, *original));
  std::vector<uint8_t> message = {4, 5, 6};
  auto signature = (*moved)->Sign(message);
  ASSERT_TRUE(signature.has_value()) << signature.error().message();
  EXPECT_TRUE(VerifySignature((*moved)->public_key(), KeyAlgorithm::kEcdsaP256, message, *signature)
                  .has_value());
  std::string listing = Listing();
  EXPECT_THAT(listing, Not(HasSubstr("device-key.next")));
  EXPECT_THAT(listing, HasSubstr("Access:     sensitive, always sensitive, never extractable"));
}

TEST_F(Pkcs11KeyRenameTest, RelabelKey_Rejects_ALabelAnotherKeyHas_AndTheTokenStays) {
  ASSERT_TRUE(MakeKey("first"));
  ASSERT_TRUE(MakeKey("second"));
  std::string before = Listing();
  auto refused = store_.RelabelKey(Uri("second"), "first");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_THAT(refused.error().message(), HasSubstr("another private key has that label"));
  EXPECT_EQ(Listing(), before);
}

TEST_F(Pkcs11KeyRenameTest, RelabelKey_Rejects_MissingKey_AndTheTokenStays) {
  ASSERT_TRUE(MakeKey("present"));
  std::string before = Listing();
  auto refused = store_.RelabelKey(Uri("absent"), "present-too");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Listing(), before);
}

}  // namespace
}  // namespace devid::keys
