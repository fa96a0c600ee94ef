#include "devid/device_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>

#include "keys/key_store.h"
#include "pki/csr.h"

namespace devid::sdk {
namespace {

class DeviceKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/devid-device-key-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    options_.getenv = [](const std::string& name) -> std::optional<std::string> {
      if (name == "DEVICE_PASSPHRASE") return "device key test passphrase";
      return std::nullopt;
    };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Uri(const std::string& name) const {
    return "file:" + dir_ + "/" + name + "?passphrase-env=DEVICE_PASSPHRASE";
  }

  std::string dir_;
  DeviceKeyOptions options_;
};

TEST_F(DeviceKeyTest, CreatesKey_WhoseRequestNamesTheDeviceAndProvesPossession) {
  auto created = CreateDeviceKey(Uri("device.key"), "ecdsa-p384", options_);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_NE(created->find(dir_ + "/device.key"), std::string::npos) << *created;
  auto key = OpenDeviceKey(*created, options_);
  ASSERT_TRUE(key) << key.error().message();
  EXPECT_EQ((*key)->algorithm(), keys::KeyAlgorithm::kEcdsaP384);

  auto pem = CertificateSigningRequestPem(**key, "device-0042");
  ASSERT_TRUE(pem) << pem.error().message();
  auto csr = pki::Csr::FromPem(*pem);
  ASSERT_TRUE(csr) << csr.error().message();
  EXPECT_TRUE(csr->VerifySignature());
  EXPECT_EQ(csr->SubjectCommonName(), "device-0042");
  EXPECT_EQ(EVP_PKEY_eq(csr->public_key(), (*key)->public_key()), 1);
}

TEST_F(DeviceKeyTest, Rejects_AlgorithmsThatCannotSignTls_CreatingNothing) {
  for (const char* algorithm : {"rsa-3072", "ed25519"}) {
    SCOPED_TRACE(algorithm);
    auto created = CreateDeviceKey(Uri(algorithm), algorithm, options_);
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(created.error().message().find("sign TLS handshakes"), std::string::npos)
        << created.error().message();
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + algorithm));
  }
}

TEST_F(DeviceKeyTest, Rejects_WrongPassphraseAndUnknownScheme) {
  ASSERT_TRUE(CreateDeviceKey(Uri("device.key"), "ecdsa-p256", options_));
  DeviceKeyOptions wrong{
      .getenv = [](const std::string&) -> std::optional<std::string> { return "not it"; }};
  auto locked = OpenDeviceKey(Uri("device.key"), wrong);
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().code(), ErrorCode::kPermissionDenied);
  auto unknown = OpenDeviceKey("hsm:slot=1", options_);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DeviceKeyTest, Rejects_RequestWithoutOrWithOverlongCommonName) {
  ASSERT_TRUE(CreateDeviceKey(Uri("device.key"), "ecdsa-p256", options_));
  auto key = OpenDeviceKey(Uri("device.key"), options_);
  ASSERT_TRUE(key);
  for (const std::string& name : {std::string(), std::string(65, 'a')}) {
    auto pem = CertificateSigningRequestPem(**key, name);
    ASSERT_FALSE(pem);
    EXPECT_EQ(pem.error().code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace devid::sdk
