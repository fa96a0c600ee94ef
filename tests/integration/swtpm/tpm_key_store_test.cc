// The TPM key store (keys/tpm2/tpm2_key_store.h) on swtpm: ECDSA keys made inside the TPM at
// persistent handles, whose signatures verify with OpenSSL against the public key, that sign a
// TLS handshake as the client's key, and the refusals: an empty handle, an occupied one, an
// object that is no signing key, an unreachable TPM.
//
// Needs swtpm (scripts/install-deps.sh); a missing tool fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/random.h"
#include "keys/key_uri.h"
#include "keys/openssl_signing_key.h"
#include "keys/testing/tls_handshake.h"
#include "keys/tpm2/tpm2_device.h"
#include "keys/tpm2/tpm2_key_store.h"
#include "swtpm.h"

namespace devid::testing {
namespace {

using keys::KeyAlgorithm;
using ::testing::HasSubstr;

class TpmKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) / ("devid-tpm-keys-" + random_.Hex(6));
    tpm_ = Swtpm::Start(root_ / "tpm");
    ASSERT_NE(tpm_, nullptr);
  }
  void TearDown() override {
    tpm_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  keys::KeyUri Uri(const std::string& handle) const {
    auto uri = keys::ParseKeyUri("tpm2:handle=" + handle + "?tcti=" + tpm_->Tcti());
    EXPECT_TRUE(uri) << uri.error().message();
    return uri.value_or(keys::KeyUri{});
  }

  std::shared_ptr<const keys::Key> Create(const std::string& handle, KeyAlgorithm algorithm) {
    auto key = store_.Create(Uri(handle), algorithm);
    EXPECT_TRUE(key) << key.error().message();
    return key ? std::shared_ptr<const keys::Key>(std::move(*key)) : nullptr;
  }

  SecureRandom random_;
  std::filesystem::path root_;
  std::unique_ptr<Swtpm> tpm_;
  keys::Tpm2KeyStore store_;
};

TEST_F(TpmKeyStoreTest, Creates_P256AndP384Keys_WhoseSignaturesVerifyWithOpenSsl) {
  const std::string message = "a TBSCertificate, say";
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(message.data()), message.size());
  for (auto [handle, algorithm] : {std::pair{"0x81000010", KeyAlgorithm::kEcdsaP256},
                                   std::pair{"0x81000011", KeyAlgorithm::kEcdsaP384}}) {
    SCOPED_TRACE(keys::KeyAlgorithmName(algorithm));
    std::shared_ptr<const keys::Key> key = Create(handle, algorithm);
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(key->algorithm(), algorithm);
    EXPECT_EQ(key->uri(), "tpm2:handle=" + std::string(handle) + "?tcti=" + tpm_->Tcti());
    auto signature = key->Sign(bytes);
    ASSERT_TRUE(signature) << signature.error().message();
    EXPECT_TRUE(keys::VerifySignature(key->public_key(), algorithm, bytes, *signature));
    std::vector<uint8_t> altered = *signature;
    altered[altered.size() / 2] ^= 1;
    EXPECT_FALSE(keys::VerifySignature(key->public_key(), algorithm, bytes, altered));

    // Loaded again (another store, the same connection), it is the same key.
    keys::Tpm2KeyStore other;
    auto loaded = other.Load(Uri(handle));
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ((*loaded)->algorithm(), algorithm);
    EXPECT_EQ(EVP_PKEY_eq((*loaded)->public_key(), key->public_key()), 1);
    auto again = (*loaded)->Sign(bytes);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_TRUE(keys::VerifySignature(key->public_key(), algorithm, bytes, *again));
  }
}

TEST_F(TpmKeyStoreTest, SignDigest_VerifiesForDigestsOfAnyLength) {
  std::shared_ptr<const keys::Key> key = Create("0x81000010", KeyAlgorithm::kEcdsaP256);
  ASSERT_NE(key, nullptr);
  // TLS 1.2 may pair a P-256 key with SHA-384 or SHA-512; ECDSA takes the leftmost 256 bits.
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512(), EVP_sha1()}) {
    SCOPED_TRACE(EVP_MD_get0_name(md));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    ASSERT_EQ(EVP_Digest("handshake", 9, digest, &length, md, nullptr), 1);
    auto signature = key->SignDigest(std::span<const uint8_t>(digest, length));
    ASSERT_TRUE(signature) << signature.error().message();
    ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key->public_key(), nullptr));
    ASSERT_EQ(EVP_PKEY_verify_init(ctx.get()), 1);
    EXPECT_EQ(EVP_PKEY_verify(ctx.get(), signature->data(), signature->size(), digest, length), 1);
    ERR_clear_error();
  }
}

TEST_F(TpmKeyStoreTest, SignsTlsHandshakes_AsTheClientKey) {
  for (auto [handle, algorithm] : {std::pair{"0x81000010", KeyAlgorithm::kEcdsaP256},
                                   std::pair{"0x81000011", KeyAlgorithm::kEcdsaP384}}) {
    std::shared_ptr<const keys::Key> key = Create(handle, algorithm);
    ASSERT_NE(key, nullptr);
    auto pkey = keys::OpenSslSigningKey(key);
    ASSERT_TRUE(pkey) << pkey.error().message();
    ossl::UniquePtr<X509> cert = keys::testing::SelfSigned(key->public_key(), pkey->get(), "dev");
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(X509_verify(cert.get(), key->public_key()), 1);
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
      SCOPED_TRACE(std::string(keys::KeyAlgorithmName(algorithm)) +
                   (version == TLS1_3_VERSION ? " TLS 1.3" : " TLS 1.2"));
      keys::testing::HandshakeResult result =
          keys::testing::Handshake(cert.get(), pkey->get(), version);
      EXPECT_TRUE(result.client_ok) << result.client_error;
      ASSERT_TRUE(result.server_ok);
      ASSERT_NE(result.seen_by_server, nullptr);
      EXPECT_EQ(X509_cmp(result.seen_by_server.get(), cert.get()), 0);
    }
  }
}

TEST_F(TpmKeyStoreTest, Signs_FromManyThreadsAtOnce) {
  std::shared_ptr<const keys::Key> key = Create("0x81000010", KeyAlgorithm::kEcdsaP256);
  ASSERT_NE(key, nullptr);
  std::atomic<int> verified = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        std::string message = "message " + std::to_string(t) + "/" + std::to_string(i);
        std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(message.data()),
                                       message.size());
        auto signature = key->Sign(bytes);
        if (signature &&
            keys::VerifySignature(key->public_key(), KeyAlgorithm::kEcdsaP256, bytes, *signature)) {
          ++verified;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(verified, 20);
}

TEST_F(TpmKeyStoreTest, Rejects_LoadOfAnEmptyHandle) {
  auto key = store_.Load(Uri("0x81000012"));
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(key.error().message(), HasSubstr("no signing key at 0x81000012"));
  EXPECT_THAT(key.error().message(), HasSubstr("loading tpm2:handle=0x81000012"));
}

TEST_F(TpmKeyStoreTest, Rejects_CreateOverAnOccupiedHandle_KeepingTheKeyThere) {
  std::shared_ptr<const keys::Key> key = Create("0x81000010", KeyAlgorithm::kEcdsaP256);
  ASSERT_NE(key, nullptr);
  auto second = store_.Create(Uri("0x81000010"), KeyAlgorithm::kEcdsaP384);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_THAT(second.error().message(), HasSubstr("already holds an object at 0x81000010"));
  auto loaded = store_.Load(Uri("0x81000010"));
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(EVP_PKEY_eq((*loaded)->public_key(), key->public_key()), 1);
}

TEST_F(TpmKeyStoreTest, Rejects_ObjectsThatAreNoSigningKey_AndOtherAlgorithms) {
  // The SRK at 0x81000001 is a restricted RSA decryption key (made with the first key).
  ASSERT_NE(Create("0x81000010", KeyAlgorithm::kEcdsaP256), nullptr);
  auto srk = store_.Load(Uri("0x81000001"));
  ASSERT_FALSE(srk);
  EXPECT_EQ(srk.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(srk.error().message(), HasSubstr("not an unrestricted ECDSA signing key"));
  for (KeyAlgorithm algorithm : {KeyAlgorithm::kRsa3072, KeyAlgorithm::kEd25519}) {
    auto key = store_.Create(Uri("0x81000013"), algorithm);
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(key.error().message(), HasSubstr("makes ecdsa-p256 and ecdsa-p384 keys"));
  }
  auto empty = store_.Load(Uri("0x81000013"));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kNotFound);
}

TEST_F(TpmKeyStoreTest, Deletes_SigningKeys_ButNeverTheSrk) {
  std::shared_ptr<const keys::Key> key = Create("0x81000010", KeyAlgorithm::kEcdsaP256);
  ASSERT_NE(key, nullptr);
  ASSERT_TRUE(store_.DeleteKey(Uri("0x81000010")));
  auto gone = store_.Load(Uri("0x81000010"));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  auto again = store_.DeleteKey(Uri("0x81000010"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  // The handle is free for a new key.
  EXPECT_NE(Create("0x81000010", KeyAlgorithm::kEcdsaP384), nullptr);

  auto srk = store_.DeleteKey(Uri("0x81000001"));
  ASSERT_FALSE(srk);
  EXPECT_EQ(srk.error().code(), ErrorCode::kInvalidArgument);
  // With the last key gone the shared connection closed, so another client gets the TPM; the
  // SRK is still there.
  key.reset();
  auto device = keys::Tpm2Device::Open(tpm_->Tcti());
  ASSERT_TRUE(device) << device.error().message();
  auto exists = (*device)->ReadEccSigningKey(keys::kTpm2SrkHandle);
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TpmKeyStoreTest, Rejects_UnreachableTpm_SayingWhich) {
  uint16_t port = FreePortPair();  // nothing listens there
  auto uri = keys::ParseKeyUri("tpm2:handle=0x81000010?tcti=swtpm:host=127.0.0.1,port=" +
                               std::to_string(port));
  ASSERT_TRUE(uri);
  for (bool create : {true, false}) {
    auto key = create ? store_.Create(*uri, KeyAlgorithm::kEcdsaP256) : store_.Load(*uri);
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code(), ErrorCode::kUnavailable);
    EXPECT_THAT(key.error().message(), HasSubstr("port=" + std::to_string(port)));
    EXPECT_THAT(key.error().message(), HasSubstr("TCTI"));
  }
}

}  // namespace
}  // namespace devid::testing
