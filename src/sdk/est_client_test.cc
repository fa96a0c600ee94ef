#include "devid/est_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <mutex>

#include "api/text_response.h"
#include "base/url.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"
#include "keys/software/file_key_store.h"
#include "net/https_server.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "pki/csr.h"
#include "pki/pkcs7.h"
#include "sdk/testing/localhost_server_test.h"

namespace devid::sdk {
namespace {

using ::testing::HasSubstr;

constexpr char kDevice[] = "device-1";

// EstServer answers EST requests with a test-supplied function and keeps the last request.
class EstServer final : public api::Handler {
 public:
  api::Response Handle(const api::Request& request) override {
    std::lock_guard lock(mu_);
    last_ = request;
    return answer_(request);
  }
  void Answer(std::function<api::Response(const api::Request&)> answer) {
    std::lock_guard lock(mu_);
    answer_ = std::move(answer);
  }
  api::Request last() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  std::function<api::Response(const api::Request&)> answer_;
  api::Request last_;
};

std::unique_ptr<keys::Key> NewKey() {
  return *keys::SoftwareKey(*keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256),
                            "test:device");
}

api::Response Pkcs7(const std::vector<const pki::Certificate*>& certificates) {
  api::Response response;
  response.SetHeader("Content-Type", "application/pkcs7-mime; smime-type=certs-only");
  response.body = ossl::Base64Encode(*pki::CertsOnlyPkcs7Der(certificates)) + "\r\n";
  return response;
}

class EstClientTest : public testing::LocalhostServerTest {
 protected:
  void SetUp() override { StartServer(est_); }

  EstClient Client() {
    return EstClient({.host = "localhost",
                      .port = server_->port(),
                      .trust_bundle_pem = authority_->TrustBundlePem(),
                      .timeout = std::chrono::seconds(10)});
  }

  // IssueForTheRequest answers an enrollment the way devid does: a device-client certificate for
  // the request's key and CN. common_name or public_key, when given, take their place, as in the
  // answer of a server that misbehaves.
  void IssueForTheRequest(std::string common_name = "", const EVP_PKEY* public_key = nullptr) {
    est_.Answer([common_name, public_key](const api::Request& request) {
      auto der = ossl::Base64Decode(request.body);
      auto csr = pki::Csr::FromDer(std::string(der->begin(), der->end()));
      auto issued = authority_->Issue(
          ca::kDeviceClientProfile,
          {.common_name = common_name.empty() ? csr->SubjectCommonName() : common_name,
           .public_key = public_key != nullptr ? public_key : csr->public_key()});
      return Pkcs7({&*issued});
    });
  }

  EstServer est_;
};

TEST_F(EstClientTest, CaCerts_ReturnsTheServersCertificates) {
  const pki::Certificate& issuing = authority_->issuers().front().certificate;
  const pki::Certificate& root = authority_->roots().front();
  est_.Answer([&](const api::Request&) { return Pkcs7({&issuing, &root}); });
  auto certificates = Client().CaCerts();
  ASSERT_TRUE(certificates) << certificates.error().message();
  ASSERT_EQ(certificates->size(), 2u);
  EXPECT_EQ((*certificates)[0].SerialHex(), issuing.SerialHex());
  EXPECT_EQ(est_.last().method, "GET");
  EXPECT_EQ(est_.last().target, "/.well-known/est/cacerts");
}

TEST_F(EstClientTest, SimpleEnroll_SendsASignedRequestWithTheToken) {
  IssueForTheRequest();
  auto key = NewKey();
  auto certificate = Client().SimpleEnroll(*key, kDevice, "SharedAccessSignature sr=x");
  ASSERT_TRUE(certificate) << certificate.error().message();
  EXPECT_EQ(certificate->SubjectCommonName(), kDevice);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(certificate->get()), key->public_key()), 1);

  api::Request request = est_.last();
  EXPECT_EQ(request.target, "/.well-known/est/simpleenroll");
  EXPECT_EQ(request.HeaderValue("content-type"), "application/pkcs10");
  EXPECT_EQ(request.HeaderValue("authorization"), "SharedAccessSignature sr=x");
  auto der = ossl::Base64Decode(request.body);
  ASSERT_TRUE(der);
  auto csr = pki::Csr::FromDer(std::string(der->begin(), der->end()));
  ASSERT_TRUE(csr);
  EXPECT_TRUE(csr->VerifySignature());
  EXPECT_EQ(csr->SubjectCommonName(), kDevice);
}

// FailingSas is a SAS credential whose key store is gone.
class FailingSas final : public SasCredential {
 public:
  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view) override {
    return std::unexpected(Unavailable("the TPM does not answer"));
  }
};

TEST_F(EstClientTest, SimpleEnroll_WithASasCredential_SendsTheTokenItSigned) {
  IssueForTheRequest();
  constexpr char kKey[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
  auto sas = SymmetricKeyCredential(kKey);
  ASSERT_TRUE(sas) << sas.error().message();
  auto key = NewKey();
  auto certificate = Client().SimpleEnroll(*key, "0ne00000A0", kDevice, **sas);
  ASSERT_TRUE(certificate) << certificate.error().message();
  EXPECT_EQ(certificate->SubjectCommonName(), kDevice);

  // The token is DPS's (protocol notes §2.2): sr and se signed with the device's key.
  std::string token(est_.last().HeaderValue("authorization"));
  std::string prefix = "SharedAccessSignature sr=0ne00000A0%2Fregistrations%2Fdevice-1&sig=";
  ASSERT_TRUE(token.starts_with(prefix)) << token;
  size_t se_at = token.find("&se=");
  size_t skn_at = token.find("&skn=registration");
  ASSERT_NE(se_at, std::string::npos);
  ASSERT_NE(skn_at, std::string::npos);
  std::string signature = *PercentDecode(token.substr(prefix.size(), se_at - prefix.size()));
  std::string expiry = token.substr(se_at + 4, skn_at - se_at - 4);
  auto key_bytes = ossl::Base64Decode(kKey);
  EXPECT_EQ(signature, ossl::Base64Encode(ossl::HmacSha256(
                           *key_bytes, "0ne00000A0%2Fregistrations%2Fdevice-1\n" + expiry)));
}

TEST_F(EstClientTest, SimpleEnroll_Rejects_ASasCredentialThatCannotSign_WithoutSending) {
  IssueForTheRequest();
  FailingSas sas;
  auto key = NewKey();
  auto refused = Client().SimpleEnroll(*key, "0ne00000A0", kDevice, sas);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(refused.error().message(), HasSubstr("signing the SAS token"));
  EXPECT_THAT(refused.error().message(), HasSubstr("the TPM does not answer"));
  EXPECT_EQ(est_.last().target, "");
}

TEST_F(EstClientTest, SimpleEnroll_Rejects_AnEmptyIdScope_WithoutSending) {
  IssueForTheRequest();
  FailingSas sas;
  auto key = NewKey();
  auto refused = Client().SimpleEnroll(*key, "", kDevice, sas);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(refused.error().message(), HasSubstr("ID scope is required"));
  EXPECT_EQ(est_.last().target, "");
}

TEST_F(EstClientTest, SimpleReenroll_AuthenticatesWithTheCurrentCertificate) {
  IssueForTheRequest();
  std::shared_ptr<const keys::Key> current_key = NewKey();
  auto current = authority_->Issue(
      ca::kDeviceClientProfile, {.common_name = kDevice, .public_key = current_key->public_key()});
  ASSERT_TRUE(current);
  auto new_key = NewKey();
  auto renewed = Client().SimpleReenroll(*current, current_key, *new_key);
  ASSERT_TRUE(renewed) << renewed.error().message();
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(renewed->get()), new_key->public_key()), 1);
  api::Request request = est_.last();
  EXPECT_EQ(request.target, "/.well-known/est/simplereenroll");
  EXPECT_FALSE(request.HasHeader("authorization"));
  ASSERT_FALSE(request.peer_certificates_der.empty());
  EXPECT_EQ(request.peer_certificates_der.front(), current->ToDer());
}

TEST_F(EstClientTest, SimpleReenroll_Rejects_AKeyThatIsNotTheCertificates) {
  IssueForTheRequest();
  std::shared_ptr<const keys::Key> other_key = NewKey();
  auto key = NewKey();
  auto current = authority_->Issue(ca::kDeviceClientProfile,
                                   {.common_name = kDevice, .public_key = key->public_key()});
  ASSERT_TRUE(current);
  auto renewed = Client().SimpleReenroll(*current, other_key, *key);
  ASSERT_FALSE(renewed);
  EXPECT_EQ(renewed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(renewed.error().message(), HasSubstr("is not the certificate's key"));
  EXPECT_TRUE(est_.last().method.empty());  // nothing was sent
}

struct BadAnswer {
  const char* name;
  std::function<api::Response(const api::Request&)> answer;
  ErrorCode code;
  const char* message;
};

class EstClientBadAnswerTest : public EstClientTest,
                               public ::testing::WithParamInterface<BadAnswer> {};

TEST_P(EstClientBadAnswerTest, SimpleEnroll_Fails_NamingTheCause) {
  est_.Answer(GetParam().answer);
  auto key = NewKey();
  auto certificate = Client().SimpleEnroll(*key, kDevice, "SharedAccessSignature sr=x");
  ASSERT_FALSE(certificate);
  EXPECT_EQ(certificate.error().code(), GetParam().code) << certificate.error().message();
  EXPECT_THAT(certificate.error().message(), HasSubstr("enrolling device-1 through EST: "));
  EXPECT_THAT(certificate.error().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    EachAnswer, EstClientBadAnswerTest,
    ::testing::Values(
        BadAnswer{"Refused",
                  [](const api::Request&) {
                    return api::TextResponse(403, "the enrollment of device-1 is disabled");
                  },
                  ErrorCode::kPermissionDenied,
                  "the server refused (HTTP 403): the enrollment of device-1 is disabled"},
        BadAnswer{"Unauthenticated",
                  [](const api::Request&) { return api::TextResponse(401, "token expired"); },
                  ErrorCode::kUnauthenticated, "(HTTP 401): token expired"},
        BadAnswer{"ServerError",
                  [](const api::Request&) {
                    return api::TextResponse(503, "internal error; tracking id 7");
                  },
                  ErrorCode::kUnavailable, "(HTTP 503)"},
        BadAnswer{"NotPkcs7",
                  [](const api::Request&) {
                    api::Response response;
                    response.SetHeader("Content-Type", "text/html");
                    response.body = "<html>";
                    return response;
                  },
                  ErrorCode::kFailedPrecondition, "text/html instead of application/pkcs7-mime"},
        BadAnswer{"Garbage",
                  [](const api::Request&) {
                    api::Response response;
                    response.SetHeader("Content-Type", "application/pkcs7-mime");
                    response.body = "bm90IGEgUEtDUyAjNw==";
                    return response;
                  },
                  ErrorCode::kFailedPrecondition, "not a base64 certs-only PKCS #7"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(EstClientTest, SimpleEnroll_Rejects_ACertificateForAnotherKey) {
  auto other = NewKey();
  IssueForTheRequest("", other->public_key());
  auto key = NewKey();
  auto certificate = Client().SimpleEnroll(*key, kDevice, "SharedAccessSignature sr=x");
  ASSERT_FALSE(certificate);
  EXPECT_EQ(certificate.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(certificate.error().message(),
              HasSubstr("the server returned a certificate for another key than test:device"));
}

TEST_F(EstClientTest, SimpleEnroll_Rejects_ACertificateForAnotherDevice) {
  IssueForTheRequest("device-2");
  auto key = NewKey();
  auto certificate = Client().SimpleEnroll(*key, kDevice, "SharedAccessSignature sr=x");
  ASSERT_FALSE(certificate);
  EXPECT_EQ(certificate.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(certificate.error().message(),
              HasSubstr("the server returned a certificate for CN=device-2, not this device"));
}

TEST_F(EstClientTest, Rejects_MissingTrustBundle_WithoutConnecting) {
  EstClient client({.host = "localhost", .port = server_->port()});
  auto certificates = client.CaCerts();
  ASSERT_FALSE(certificates);
  EXPECT_EQ(certificates.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(certificates.error().message(), HasSubstr("a trust bundle is required"));
  EXPECT_TRUE(est_.last().method.empty());
}

}  // namespace
}  // namespace devid::sdk
