// The OpenSSL bridge in a real TLS handshake: an OpenSSL server asks for a client certificate, and
// the client signs the handshake through a file key and a SoftHSM2 key.

#include "keys/openssl_signing_key.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "keys/key_uri.h"
#include "keys/testing/key_store_backends.h"

namespace devid::keys {
namespace {

using testing::FileBackend;
using testing::SoftHsmBackend;

// SelfSigned makes a certificate for public_key named common_name, signed by signer (through
// EVP_DigestSign, so a bridged key signs it through its store).
ossl::UniquePtr<X509> SelfSigned(EVP_PKEY* public_key, EVP_PKEY* signer,
                                 const std::string& common_name) {
  ossl::UniquePtr<X509> cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), public_key);
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

struct HandshakeResult {
  bool client_ok = false;
  bool server_ok = false;
  ossl::UniquePtr<X509> seen_by_server;
  std::string client_error;
};

// Handshake runs a TLS handshake over a socketpair between an OpenSSL server that requires a
// client certificate and a client presenting client_cert with client_key, at version.
HandshakeResult Handshake(X509* client_cert, EVP_PKEY* client_key, int version) {
  HandshakeResult result;
  ossl::UniquePtr<EVP_PKEY> server_key(EVP_EC_gen("P-256"));
  ossl::UniquePtr<X509> server_cert = SelfSigned(server_key.get(), server_key.get(), "server");
  ossl::UniquePtr<SSL_CTX> server_ctx(SSL_CTX_new(TLS_server_method()));
  ossl::UniquePtr<SSL_CTX> client_ctx(SSL_CTX_new(TLS_client_method()));
  EXPECT_EQ(SSL_CTX_use_certificate(server_ctx.get(), server_cert.get()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), server_key.get()), 1);
  // The client certificate is self-signed: this test is about who signs, not about trust.
  SSL_CTX_set_verify(server_ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     [](int, X509_STORE_CTX*) { return 1; });
  for (SSL_CTX* ctx : {server_ctx.get(), client_ctx.get()}) {
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
  }
  EXPECT_EQ(SSL_CTX_use_certificate(client_ctx.get(), client_cert), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(client_ctx.get(), client_key), 1);
  EXPECT_EQ(SSL_CTX_check_private_key(client_ctx.get()), 1);

  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::thread server([&] {
    SSL* ssl = SSL_new(server_ctx.get());
    SSL_set_fd(ssl, fds[0]);
    result.server_ok = SSL_accept(ssl) == 1;
    if (result.server_ok) result.seen_by_server.reset(SSL_get1_peer_certificate(ssl));
    SSL_shutdown(ssl);
    SSL_free(ssl);
    ::close(fds[0]);
    ERR_clear_error();
  });
  SSL* ssl = SSL_new(client_ctx.get());
  SSL_set_fd(ssl, fds[1]);
  result.client_ok = SSL_connect(ssl) == 1;
  // In TLS 1.3 the client's certificate and signature follow its Finished message; the server
  // judges them when it next reads, so the client waits for its close.
  char byte = 0;
  if (result.client_ok) SSL_read(ssl, &byte, 1);
  if (!result.client_ok) {
    char text[256];
    ERR_error_string_n(ERR_peek_error(), text, sizeof(text));
    result.client_error = text;
  }
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fds[1]);
  server.join();
  return result;
}

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
