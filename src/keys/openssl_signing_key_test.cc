// The OpenSSL bridge in a real TLS handshake: an OpenSSL server asks for a client certificate, and
// the client signs the handshake through a file key and a SoftHSM2 key.

#include "keys/openssl_signing_key.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "keys/key_uri.h"
#include "keys/testing/key_store_backends.h"
#include "keys/testing/tls_handshake.h"

namespace devid::keys {
namespace {

using testing::FileBackend;
using testing::Handshake;
using testing::HandshakeResult;
using testing::SelfSigned;
using testing::SoftHsmBackend;

template <typename Backend>
class OpenSslSigningKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()) << "the key store back end did not start"; }
  std::shared_ptr<const Key> Create(std::string_view name, KeyAlgorithm algorithm) {
    auto uri = ParseKeyUri(backend_.Uri(name));
    EXPECT_TRUE(uri) << uri.error().message();
    auto key = backend_.store().Create(*uri, algorithm);
    EXPECT_TRUE(key) << key.error().message();
    return key ? std::shared_ptr<const Key>(std::move(*key)) : nullptr;
  }
  Backend backend_;
};

using Backends = ::testing::Types<FileBackend, SoftHsmBackend>;
TYPED_TEST_SUITE(OpenSslSigningKeyTest, Backends);

TYPED_TEST(OpenSslSigningKeyTest, SignsTlsHandshakes_ServerSeesTheKeysCertificate) {
  for (KeyAlgorithm algorithm : {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384}) {
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
      SCOPED_TRACE(std::string(KeyAlgorithmName(algorithm)) + " TLS " +
                   (version == TLS1_3_VERSION ? "1.3" : "1.2"));
      std::string name =
          "tls-" + std::string(KeyAlgorithmName(algorithm)) + "-" + std::to_string(version);
      std::shared_ptr<const Key> key = this->Create(name, algorithm);
      ASSERT_NE(key, nullptr);
      auto pkey = OpenSslSigningKey(key);
      ASSERT_TRUE(pkey) << pkey.error().message();
      ossl::UniquePtr<X509> cert = SelfSigned(key->public_key(), pkey->get(), "device-1");
      ASSERT_NE(cert, nullptr);
      // The certificate was signed through the key, so its own signature checks the bridge too.
      EXPECT_EQ(X509_verify(cert.get(), key->public_key()), 1);

      HandshakeResult result = Handshake(cert.get(), pkey->get(), version);
      EXPECT_TRUE(result.client_ok) << result.client_error;
      ASSERT_TRUE(result.server_ok);
      ASSERT_NE(result.seen_by_server, nullptr);
      EXPECT_EQ(X509_cmp(result.seen_by_server.get(), cert.get()), 0);
    }
  }
}

TYPED_TEST(OpenSslSigningKeyTest, KeepsTheKey_AfterTheCallerLetsGo) {
  std::shared_ptr<const Key> key = this->Create("held", KeyAlgorithm::kEcdsaP256);
  ASSERT_NE(key, nullptr);
  auto pkey = OpenSslSigningKey(key);
  ASSERT_TRUE(pkey) << pkey.error().message();
  ossl::UniquePtr<EVP_PKEY> public_key(EVP_PKEY_dup(key->public_key()));
  key.reset();
  ossl::UniquePtr<X509> cert = SelfSigned(public_key.get(), pkey->get(), "device-2");
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_verify(cert.get(), public_key.get()), 1);
}

TYPED_TEST(OpenSslSigningKeyTest, SignDigest_VerifiesOverTheDigest) {
  std::shared_ptr<const Key> key = this->Create("digest", KeyAlgorithm::kEcdsaP384);
  ASSERT_NE(key, nullptr);
  unsigned char digest[48];
  unsigned int len = 0;
  ASSERT_EQ(EVP_Digest("message", 7, digest, &len, EVP_sha384(), nullptr), 1);
  auto signature = key->SignDigest(std::span<const uint8_t>(digest, len));
  ASSERT_TRUE(signature) << signature.error().message();
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key->public_key(), nullptr));
  ASSERT_EQ(EVP_PKEY_verify_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_verify(ctx.get(), signature->data(), signature->size(), digest, len), 1);
  digest[0] ^= 1;
  EXPECT_NE(EVP_PKEY_verify(ctx.get(), signature->data(), signature->size(), digest, len), 1);
  ERR_clear_error();
}

TYPED_TEST(OpenSslSigningKeyTest, Rejects_RsaAndEd25519Keys_SayingWhy) {
  for (KeyAlgorithm algorithm : {KeyAlgorithm::kRsa3072, KeyAlgorithm::kEd25519}) {
    SCOPED_TRACE(KeyAlgorithmName(algorithm));
    std::shared_ptr<const Key> key =
        this->Create("no-tls-" + std::string(KeyAlgorithmName(algorithm)), algorithm);
    ASSERT_NE(key, nullptr);
    auto pkey = OpenSslSigningKey(key);
    ASSERT_FALSE(pkey);
    EXPECT_EQ(pkey.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(pkey.error().message().find("cannot sign for TLS"), std::string::npos)
        << pkey.error().message();
    EXPECT_NE(pkey.error().message().find("RSA-PSS"), std::string::npos);
    auto digest = key->SignDigest(std::span<const uint8_t>());
    ASSERT_FALSE(digest);
    EXPECT_EQ(digest.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(digest.error().message().find("signs whole messages only"), std::string::npos);
  }
}

// GoneKey is a P-256 key whose store went away (a token pulled out): every signature fails.
class GoneKey final : public Key {
 public:
  explicit GoneKey(ossl::UniquePtr<EVP_PKEY> public_key)
      : Key("test:gone", KeyAlgorithm::kEcdsaP256, std::move(public_key)) {}
  Result<std::vector<uint8_t>> Sign(std::span<const uint8_t>) const override {
    return std::unexpected(Unavailable("signing with test:gone: the token was removed"));
  }
  Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t>) const override {
    return Sign({});
  }
};

TEST(OpenSslSigningKeyFailureTest, FailsTheHandshake_AndKeepsTheStoresReason) {
  ossl::UniquePtr<EVP_PKEY> private_key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509> cert = SelfSigned(private_key.get(), private_key.get(), "device-3");
  auto gone = std::make_shared<GoneKey>(ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_dup(private_key.get())));
  auto pkey = OpenSslSigningKey(gone);
  ASSERT_TRUE(pkey) << pkey.error().message();
  EXPECT_FALSE(TakeSigningFailure().has_value());

  HandshakeResult result = Handshake(cert.get(), pkey->get(), TLS1_3_VERSION);
  EXPECT_FALSE(result.client_ok);
  EXPECT_FALSE(result.server_ok);
  std::optional<Error> failure = TakeSigningFailure();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code(), ErrorCode::kUnavailable);
  EXPECT_EQ(failure->message(), "signing with test:gone: the token was removed");
  EXPECT_FALSE(TakeSigningFailure().has_value());  // taken once
}

}  // namespace
}  // namespace devid::keys
