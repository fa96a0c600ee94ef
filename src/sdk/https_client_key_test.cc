// HttpsClient with a client certificate whose key signs in its key store (ClientTlsOptions::
// client_key), against devid's own HTTPS server asking for client certificates.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/text_response.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"
#include "keys/software/file_key_store.h"
#include "net/https_server.h"
#include "sdk/https_client.h"
#include "sdk/testing/localhost_server_test.h"

namespace devid::sdk {
namespace {

using ::testing::HasSubstr;

// PeerName answers with the CN of the client certificate the TLS layer received.
class PeerName final : public api::Handler {
 public:
  api::Response Handle(const api::Request& request) override {
    api::Response response;
    response.status = 200;
    if (request.peer_certificates && !request.peer_certificates->empty()) {
      response.body = request.peer_certificates->front().SubjectCommonName();
    }
    return response;
  }
};

// GoneKey is a P-256 key whose store went away (a token pulled out): every signature fails.
class GoneKey final : public keys::Key {
 public:
  explicit GoneKey(ossl::UniquePtr<EVP_PKEY> public_key)
      : Key("test:gone", keys::KeyAlgorithm::kEcdsaP256, std::move(public_key)) {}
  Result<std::vector<uint8_t>> Sign(std::span<const uint8_t>) const override {
    return std::unexpected(Unavailable("signing with test:gone: the token was removed"));
  }
  Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t>) const override {
    return Sign({});
  }
};

class HttpsClientKeyTest : public testing::LocalhostServerTest {
 protected:
  void SetUp() override { StartServer(handler_); }

  // Options trust the test CA and present a device certificate for key's public half.
  ClientTlsOptions Options(const keys::Key& key) {
    auto issued = authority_->Issue(ca::kDeviceClientProfile,
                                    {.common_name = "device-1", .public_key = key.public_key()});
    EXPECT_TRUE(issued) << issued.error().message();
    ClientTlsOptions tls;
    tls.trust_bundle_pem = authority_->TrustBundlePem();
    tls.certificate_chain_pem = issued ? authority_->ChainPem(*issued) : "";
    tls.timeout = std::chrono::seconds(10);
    return tls;
  }

  // StoreKeyOptions are Options for a fresh key that signs the handshake inside its store.
  ClientTlsOptions StoreKeyOptions() {
    std::shared_ptr<const keys::Key> key = *keys::SoftwareKey(
        *keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256), "test:device");
    ClientTlsOptions tls = Options(*key);
    tls.client_key = std::move(key);
    return tls;
  }

  PeerName handler_;
};

TEST_F(HttpsClientKeyTest, PresentsCertificate_SignedThroughTheKeyStore) {
  ClientTlsOptions tls = StoreKeyOptions();
  auto client = HttpsClient::Connect("localhost", server_->port(), tls);
  ASSERT_TRUE(client) << client.error().message();
  auto response = client->Send("GET", "/whoami");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "device-1");
}

TEST_F(HttpsClientKeyTest, Fails_WithTheStoresReason_WhenTheKeyCannotSign) {
  ossl::UniquePtr<EVP_PKEY> pair(EVP_EC_gen("P-256"));
  auto gone = std::make_shared<GoneKey>(ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_dup(pair.get())));
  ClientTlsOptions tls = Options(*gone);
  tls.client_key = gone;
  auto client = HttpsClient::Connect("localhost", server_->port(), tls);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(
      client.error().message(),
      HasSubstr("signing the TLS handshake: signing with test:gone: the token was removed"));
}

TEST_F(HttpsClientKeyTest, Rejects_PemKeyAndStoreKeyTogether) {
  ClientTlsOptions tls = StoreKeyOptions();
  tls.private_key_pem = "-----BEGIN PRIVATE KEY-----\n";
  auto client = HttpsClient::Connect("localhost", server_->port(), tls);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(client.error().message(), HasSubstr("not both"));
}

}  // namespace
}  // namespace devid::sdk
