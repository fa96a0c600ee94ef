#include "api/revocation_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ocsp.h>
#include <strings.h>

#include "base/url.h"
#include "ca/testing/inventory_fixture.h"
#include "ossl/base64.h"
#include "ossl/revocation_handles.h"

namespace devid::api {
namespace {

using ::testing::HasSubstr;

class RevocationApiTest : public ca::testing::InventoryFixture {
 protected:
  void SetUp() override {
    InventoryFixture::SetUp();
    auto key = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    ASSERT_TRUE(key);
    auto certificate = authority_->IssueWith(Issuer(), ca::kOcspSignerProfile,
                                             {.common_name = "OCSP", .public_key = key->get()});
    ASSERT_TRUE(certificate);
    auto signer_key = keys::SoftwareKey(std::move(*key), "test:ocsp");
    std::vector<ca::OcspSigner> signers;
    signers.push_back({&Issuer(), std::move(*certificate), std::move(*signer_key)});
    auto ocsp = ca::OcspResponder::Create(*authority_, std::move(signers), *registry_, clock_);
    ASSERT_TRUE(ocsp);
    ocsp_ = std::move(*ocsp);
    crls_ = std::make_unique<ca::CrlPublisher>(*authority_, *registry_, clock_);
    api_ = std::make_unique<RevocationApi>(*authority_, *crls_, *ocsp_, clock_);
  }

  Response Send(std::string method, std::string target, std::string body = "",
                std::vector<Header> headers = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    auto parsed = ParseTarget(request.target);
    EXPECT_TRUE(parsed);
    EXPECT_TRUE(api_->Matches(*parsed));
    return api_->Handle(request, *parsed, "tracking-1");
  }

  // SendNow offers the request to the non-blocking path (TryHandleNow).
  std::optional<Response> SendNow(std::string method, std::string target, std::string body = "",
                                  std::vector<Header> headers = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    auto parsed = ParseTarget(request.target);
    EXPECT_TRUE(parsed);
    EXPECT_TRUE(api_->Matches(*parsed));
    return api_->TryHandleNow(request, *parsed);
  }

  static std::string HeaderOf(const Response& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
      if (strcasecmp(key.c_str(), std::string(name).c_str()) == 0) return value;
    }
    return "";
  }

  std::string OcspRequest(const pki::Certificate& certificate) {
    ossl::UniquePtr<OCSP_REQUEST> request(OCSP_REQUEST_new());
    OCSP_request_add0_id(
        request.get(), OCSP_cert_to_id(EVP_sha1(), certificate.get(), Issuer().certificate.get()));
    unsigned char* der = nullptr;
    int length = i2d_OCSP_REQUEST(request.get(), &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    return out;
  }

  static int OcspStatus(const Response& response) {
    const auto* p = reinterpret_cast<const unsigned char*>(response.body.data());
    ossl::UniquePtr<OCSP_RESPONSE> parsed(
        d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(response.body.size())));
    return parsed ? OCSP_response_status(parsed.get()) : -1;
  }

  std::unique_ptr<ca::OcspResponder> ocsp_;
  std::unique_ptr<ca::CrlPublisher> crls_;
  std::unique_ptr<RevocationApi> api_;
};

TEST_F(RevocationApiTest, Crl_IsDerWithCachingHeaders_And304ForAMatchingEtag) {
  std::string path = "/crl/" + ca::KeyIdHex(Issuer().certificate) + ".crl";
  Response response = Send("GET", path);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(HeaderOf(response, "content-type"), "application/pkix-crl");
  EXPECT_EQ(HeaderOf(response, "cache-control"),
            "max-age=300, public, no-transform, must-revalidate");
  std::string etag = HeaderOf(response, "etag");
  ASSERT_FALSE(etag.empty());
  const auto* p = reinterpret_cast<const unsigned char*>(response.body.data());
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(response.body.size())));
  EXPECT_TRUE(crl);

  Response cached = Send("GET", path, "", {{"if-none-match", etag}});
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
}

TEST_F(RevocationApiTest, CaCertificate_ServesIssuingCaAndRootByKeyId) {
  Response issuing = Send("GET", "/ca/" + ca::KeyIdHex(Issuer().certificate) + ".cer");
  ASSERT_EQ(issuing.status, 200);
  EXPECT_EQ(HeaderOf(issuing, "content-type"), "application/pkix-cert");
  EXPECT_EQ(issuing.body, Issuer().certificate.ToDer());
  Response root = Send("GET", "/ca/" + ca::KeyIdHex(authority_->roots().front()) + ".cer");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(root.body, authority_->roots().front().ToDer());
}

TEST_F(RevocationApiTest, Rejects_UnknownKeyIdsAndNames_With404) {
  size_t audit = registry_->ListAudit(0, 1000)->size();
  Response crl = Send("GET", "/crl/00ff.crl");
  EXPECT_EQ(crl.status, 404);
  EXPECT_THAT(crl.body, HasSubstr("no CA of this server has key ID 00ff"));
  Response cer = Send("GET", "/ca/00ff.cer");
  EXPECT_EQ(cer.status, 404);
  EXPECT_THAT(cer.body, HasSubstr("no CA certificate has key ID 00ff"));
  EXPECT_EQ(Send("GET", "/crl/" + ca::KeyIdHex(Issuer().certificate)).status, 404);
  EXPECT_EQ(Send("GET", "/crl/a/b.crl").status, 404);
  // The root's key is not held here: no CRL for it.
  EXPECT_EQ(Send("GET", "/crl/" + ca::KeyIdHex(authority_->roots().front()) + ".crl").status, 404);
  EXPECT_EQ(registry_->ListAudit(0, 1000)->size(), audit);
}

TEST_F(RevocationApiTest, Rejects_WrongMethodsAndContentType) {
  Response post_crl = Send("POST", "/crl/" + ca::KeyIdHex(Issuer().certificate) + ".crl");
  EXPECT_EQ(post_crl.status, 405);
  EXPECT_THAT(post_crl.body, HasSubstr("takes GET"));
  Response put_ocsp = Send("PUT", "/ocsp", "x");
  EXPECT_EQ(put_ocsp.status, 405);
  EXPECT_THAT(put_ocsp.body, HasSubstr("POST /ocsp"));
  auto device = IssueDevice("api-type");
  Response wrong_type =
      Send("POST", "/ocsp", OcspRequest(device), {{"content-type", "application/json"}});
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_THAT(wrong_type.body, HasSubstr("application/ocsp-request"));
}

TEST_F(RevocationApiTest, Ocsp_PostAndGetGiveTheSameCachedResponse) {
  auto device = IssueDevice("api-ocsp");
  std::string request = OcspRequest(device);
  Response post = Send("POST", "/ocsp", request, {{"content-type", "application/ocsp-request"}});
  ASSERT_EQ(post.status, 200);
  EXPECT_EQ(HeaderOf(post, "content-type"), "application/ocsp-response");
  EXPECT_EQ(OcspStatus(post), OCSP_RESPONSE_STATUS_SUCCESSFUL);
  EXPECT_FALSE(HeaderOf(post, "etag").empty());
  EXPECT_FALSE(HeaderOf(post, "last-modified").empty());
  Response get = Send("GET", "/ocsp/" + PercentEncodeComponent(ossl::Base64Encode(request)));
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, post.body);
  // Unescaped '/' in the base64 is accepted too.
  std::string raw = ossl::Base64Encode(request);
  EXPECT_EQ(Send("GET", "/ocsp/" + raw).body, post.body);
}

TEST_F(RevocationApiTest, OcspNow_AnswersACachedResponse_AsHandleDoes) {
  auto device = IssueDevice("api-ocsp-now");
  std::string request = OcspRequest(device);
  std::vector<Header> type = {{"content-type", "application/ocsp-request"}};
  EXPECT_FALSE(SendNow("POST", "/ocsp", request, type)) << "nothing cached yet";
  Response post = Send("POST", "/ocsp", request, type);
  ASSERT_EQ(post.status, 200);
  auto now = SendNow("POST", "/ocsp", request, type);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->status, 200);
  EXPECT_EQ(now->body, post.body);
  EXPECT_EQ(now->headers, post.headers);
  auto get = SendNow("GET", "/ocsp/" + PercentEncodeComponent(ossl::Base64Encode(request)));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, post.body);

  // What Handle refuses, or must look up, is left to it.
  EXPECT_FALSE(SendNow("POST", "/ocsp", request, {{"content-type", "text/plain"}}));
  EXPECT_FALSE(SendNow("PUT", "/ocsp", request, type));
  EXPECT_FALSE(SendNow("GET", "/ocsp/%21%21not-base64"));
  EXPECT_FALSE(SendNow("POST", "/ocsp", OcspRequest(IssueDevice("api-ocsp-other")), type));
  EXPECT_FALSE(SendNow("GET", "/crl/" + ca::KeyIdHex(Issuer().certificate) + ".crl"));
}

TEST_F(RevocationApiTest, Ocsp_Rejects_UndecodableGetAndGarbage_WithMalformedRequest) {
  size_t audit = registry_->ListAudit(0, 1000)->size();
  Response get = Send("GET", "/ocsp/%21%21not-base64");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(OcspStatus(get), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  EXPECT_EQ(HeaderOf(get, "cache-control"), "no-store");
  Response post = Send("POST", "/ocsp", "garbage");
  EXPECT_EQ(OcspStatus(post), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  EXPECT_EQ(registry_->ListAudit(0, 1000)->size(), audit);
}

}  // namespace
}  // namespace devid::api
