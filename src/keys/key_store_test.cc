// The KeyStore conformance suite, run on every back end (software files and SoftHSM2), plus the
// checks that only make sense for one of them.

#include "keys/key_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "keys/pkcs11/pkcs11_key_store.h"
#include "keys/software/file_key_store.h"
#include "keys/testing/key_store_backends.h"
#include "keys/testing/softhsm_token.h"

namespace devid::keys {
namespace {

using testing::FileBackend;
using testing::kPassphrase;
using testing::SoftHsmBackend;
constexpr KeyAlgorithm kAllAlgorithms[] = {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384,
                                           KeyAlgorithm::kRsa3072, KeyAlgorithm::kEd25519};

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string PublicDer(const Key& key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.public_key(), &der);
  std::string out(reinterpret_cast<char*>(der), len > 0 ? len : 0);
  OPENSSL_free(der);
  return out;
}

template <typename Backend>
class KeyStoreConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()) << "the key store back end did not start"; }
  Result<std::unique_ptr<Key>> Create(std::string_view name, KeyAlgorithm algorithm) {
    DEVID_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(backend_.Uri(name)));
    return backend_.store().Create(uri, algorithm);
  }
  Result<std::unique_ptr<Key>> Load(std::string_view name) {
    DEVID_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(backend_.Uri(name)));
    return backend_.store().Load(uri);
  }
  Backend backend_;
};

using Backends = ::testing::Types<FileBackend, SoftHsmBackend>;
TYPED_TEST_SUITE(KeyStoreConformanceTest, Backends);

TYPED_TEST(KeyStoreConformanceTest, Creates_KeysOfEveryAlgorithm_WhoseSignaturesVerify) {
  for (KeyAlgorithm algorithm : kAllAlgorithms) {
    SCOPED_TRACE(KeyAlgorithmName(algorithm));
    auto key =
        this->Create(std::string("k-") + std::string(KeyAlgorithmName(algorithm)), algorithm);
    ASSERT_TRUE(key.has_value()) << key.error().message();
    EXPECT_EQ((*key)->algorithm(), algorithm);
    auto public_algorithm = AlgorithmOfPublicKey((*key)->public_key());
    ASSERT_TRUE(public_algorithm.has_value());
    EXPECT_EQ(*public_algorithm, algorithm);
    auto signature = (*key)->Sign(Bytes("to be signed"));
    ASSERT_TRUE(signature.has_value()) << signature.error().message();
    EXPECT_TRUE(VerifySignature((*key)->public_key(), algorithm, Bytes("to be signed"), *signature)
                    .has_value());
    auto tampered =
        VerifySignature((*key)->public_key(), algorithm, Bytes("to be signeD"), *signature);
    ASSERT_FALSE(tampered.has_value());
    EXPECT_EQ(tampered.error().code(), ErrorCode::kUnauthenticated);
  }
}

TYPED_TEST(KeyStoreConformanceTest, Loads_KeyCreatedBefore_WithTheSamePublicKey) {
  auto created = this->Create("reload", KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(created.has_value()) << created.error().message();
  auto loaded = this->Load("reload");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  EXPECT_EQ(PublicDer(**loaded), PublicDer(**created));
  EXPECT_EQ((*loaded)->algorithm(), KeyAlgorithm::kEcdsaP256);
  auto signature = (*loaded)->Sign(Bytes("m"));
  ASSERT_TRUE(signature.has_value()) << signature.error().message();
  EXPECT_TRUE(
      VerifySignature((*created)->public_key(), KeyAlgorithm::kEcdsaP256, Bytes("m"), *signature)
          .has_value());
}

TYPED_TEST(KeyStoreConformanceTest, Rejects_CreateOverAnExistingKey) {
  ASSERT_TRUE(this->Create("twice", KeyAlgorithm::kEcdsaP256).has_value());
  auto again = this->Create("twice", KeyAlgorithm::kEcdsaP256);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TYPED_TEST(KeyStoreConformanceTest, Rejects_LoadOfAMissingKey) {
  auto missing = this->Load("nothing-here");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(KeyStoreConformanceTest, Signs_FromManyThreadsAtOnce) {
  auto key = this->Create("busy", KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  std::atomic<int> good = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string message = "message " + std::to_string(t) + "/" + std::to_string(i);
        auto signature = (*key)->Sign(Bytes(message));
        if (signature && VerifySignature((*key)->public_key(), KeyAlgorithm::kEcdsaP256,
                                         Bytes(message), *signature)) {
          ++good;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 100);
}

// File key store specifics.

TEST(FileKeyStoreTest, Writes_EncryptedPkcs8_Mode0600) {
  FileBackend backend;
  auto uri = ParseKeyUri(backend.Uri("secret"));
  ASSERT_TRUE(uri.has_value());
  ASSERT_TRUE(backend.store().Create(*uri, KeyAlgorithm::kEcdsaP256).has_value());
  struct stat st {};
  ASSERT_EQ(::stat(uri->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(uri->path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("-----BEGIN ENCRYPTED PRIVATE KEY-----"), std::string::npos);
  EXPECT_EQ(text.str().find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  // The real openssl reads it with the passphrase (PBES2, AES-256-CBC).
  std::string output;
  EXPECT_EQ(testing::RunShell("openssl pkey -noout -in " + uri->path + " -passin pass:'" +
                                  std::string(kPassphrase) + "'",
                              &output),
            0)
      << output;
  EXPECT_EQ(
      testing::RunShell("openssl asn1parse -in " + uri->path + " | grep -c aes-256-cbc", &output),
      0)
      << output;
}

TEST(FileKeyStoreTest, Rejects_WrongPassphrase) {
  FileBackend backend;
  auto uri = ParseKeyUri(backend.Uri("locked"));
  ASSERT_TRUE(backend.store().Create(*uri, KeyAlgorithm::kEcdsaP256).has_value());
  FileKeyStore other([](const std::string&) -> std::optional<std::string> { return "wrong"; });
  auto loaded = other.Load(*uri);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(loaded.error().message().find("wrong passphrase"), std::string::npos);
}

TEST(FileKeyStoreTest, Rejects_UriWithoutPassphrase) {
  FileBackend backend;
  auto uri = ParseKeyUri("file:" + backend.dir() + "/plain.key");
  ASSERT_TRUE(uri.has_value());
  auto created = backend.store().Create(*uri, KeyAlgorithm::kEcdsaP256);
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(created.error().message().find("passphrase"), std::string::npos);
}

TEST(FileKeyStoreTest, Rejects_UnencryptedKeyFile) {
  FileBackend backend;
  std::string path = backend.dir() + "/plain.pem";
  ASSERT_EQ(testing::RunShell("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                              "-out " +
                              path),
            0);
  auto uri = ParseKeyUri("file:" + path + "?passphrase-env=DEVID_TEST_PASSPHRASE");
  auto loaded = backend.store().Load(*uri);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code(), ErrorCode::kInvalidArgument);
}

// PKCS #11 specifics.

TEST(Pkcs11KeyStoreTest, Creates_NonExtractableSensitiveKey_AsPkcs11ToolShows) {
  SoftHsmBackend backend;
  ASSERT_TRUE(backend.ok()) << backend.token().init_output();
  auto uri = ParseKeyUri(backend.Uri("ca-key"));
  auto key = backend.store().Create(*uri, KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  auto named = ParseKeyUri((*key)->uri());
  ASSERT_TRUE(named.has_value()) << (*key)->uri();
  EXPECT_EQ(named->PathAttribute("id").value_or("").size(), 16u) << (*key)->uri();
  std::string output;
  ASSERT_EQ(
      testing::RunShell(std::string("pkcs11-tool --module ") + DEVID_SOFTHSM2_MODULE +
                            " --token-label " + testing::SoftHsmToken::kLabel + " --login --pin " +
                            testing::SoftHsmToken::kPin + " --list-objects --type privkey",
                        &output),
      0)
      << output;
  EXPECT_NE(output.find("label:      ca-key"), std::string::npos) << output;
  EXPECT_NE(output.find("never extractable"), std::string::npos) << output;
  EXPECT_NE(output.find("always sensitive"), std::string::npos) << output;
  // The Access line lists flags separated by ", "; "extractable" on its own must not be one.
  size_t access = output.find("Access:");
  ASSERT_NE(access, std::string::npos) << output;
  std::string flags = output.substr(access + 7, output.find('\n', access) - access - 7) + ",";
  for (size_t comma = flags.find(','), start = 0; comma != std::string::npos;
       start = comma + 1, comma = flags.find(',', start)) {
    std::string flag = flags.substr(start, comma - start);
    flag.erase(0, flag.find_first_not_of(' '));
    EXPECT_NE(flag, "extractable") << flags;
  }
}

TEST(Pkcs11KeyStoreTest, Signs_ConcurrentlyOnSeparateSessions) {
  SoftHsmBackend backend;
  ASSERT_TRUE(backend.ok());
  Pkcs11KeyStore& store = backend.store();
  auto key = store.Create(*ParseKeyUri(backend.Uri("pool")), KeyAlgorithm::kRsa3072);
  ASSERT_TRUE(key.has_value()) << key.error().message();
  EXPECT_EQ(store.OpenSessionCount(), 1u);
  std::vector<std::thread> threads;
  std::atomic<int> good = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) good += (*key)->Sign(Bytes("m")).has_value() ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 40);
  // RSA-3072 signatures take milliseconds, so the threads overlapped and the pool grew instead
  // of queueing them on one session.
  EXPECT_GT(store.OpenSessionCount(), 1u);
  EXPECT_LE(store.OpenSessionCount(), 4u);
}

TEST(Pkcs11KeyStoreTest, Rejects_MissingToken) {
  SoftHsmBackend backend;
  ASSERT_TRUE(backend.ok());
  auto uri = ParseKeyUri("pkcs11:token=no-such-token;object=k?pin-value=1234");
  auto key = backend.store().Load(*uri);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(key.error().message().find("no PKCS #11 token matches"), std::string::npos);
  EXPECT_EQ(key.error().message().find("1234"), std::string::npos) << "PIN leaked";
}

TEST(Pkcs11KeyStoreTest, Rejects_WrongPin) {
  SoftHsmBackend backend;
  ASSERT_TRUE(backend.ok());
  auto uri = ParseKeyUri(std::string("pkcs11:token=") + testing::SoftHsmToken::kLabel +
                         ";object=k?pin-value=0000");
  auto key = backend.store().Create(*uri, KeyAlgorithm::kEcdsaP256);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(key.error().message().find("CKR_PIN_INCORRECT"), std::string::npos);
}

TEST(KeyStoresTest, Rejects_SchemeWithoutStore) {
  KeyStores stores;
  auto key = stores.Load("pkcs11:token=a;object=b");
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devid::keys
