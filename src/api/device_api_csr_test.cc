// Certificate issuance at registration (the 2025-07-01-preview `csr` field): a device that
// authenticated with a SAS token or a certificate leaves with a devid-issued certificate.

#include <gmock/gmock.h>

#include "api/device_api.h"
#include "api/testing/api_fixture.h"
#include "ca/testing/test_csr.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class DeviceApiCsrTest : public testing::ApiFixture {
 protected:
  std::string Body(const std::string& reg_id, const ca::testing::TestCsr& spec) {
    return json{{"registrationId", reg_id},
                {"csr", ossl::Base64Encode(ca::testing::MakeTestCsrDer(spec))}}
        .dump();
  }

  size_t Inventory() {
    auto page = registry_->QueryCertificates({}, {.max_items = 1000});
    return page ? page->items.size() : 0;
  }

  // ExpectRefused checks the status and code and that nothing was issued or stored.
  void ExpectRefused(const Response& r, int status, const std::string& code,
                     const std::string& message, const std::string& reg_id) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), code) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message));
    EXPECT_EQ(Inventory(), 0u);
    EXPECT_FALSE(registry_->GetRegistration(reg_id).has_value());
  }
};

TEST_F(DeviceApiCsrTest, SymmetricKeyDevice_GetsAnIssuedChainAtOnce) {
  PutSymmetricEnrollment("csr-dev-1");
  Response r =
      Register("csr-dev-1", DeviceToken(kPrimary, "csr-dev-1"),
               Body("csr-dev-1", {.subject = {{"CN", "csr-dev-1"}}}), "2025-07-01-preview");
  ASSERT_EQ(r.status, 200) << r.body;
  json answer = Json(r);
  EXPECT_EQ(answer["status"], "assigned");
  json chain = answer["registrationState"]["issuedCertificateChain"];
  ASSERT_EQ(chain.size(), 2u);
  auto leaf_der = ossl::Base64Decode(chain[0].get<std::string>());
  ASSERT_TRUE(leaf_der);
  auto leaf = pki::Certificate::FromDer(std::string(leaf_der->begin(), leaf_der->end()));
  ASSERT_TRUE(leaf);
  EXPECT_EQ(leaf->SubjectCommonName(), "csr-dev-1");
  EXPECT_TRUE(authority_->Verify(*leaf, X509_PURPOSE_SSL_CLIENT));
  EXPECT_EQ(chain[1], ossl::Base64Encode(authority_->issuers().front().certificate.ToDer()));
  // Recorded and audited as the device's.
  registry::CertificateFilter filter;
  filter.device_id = "csr-dev-1";
  auto recorded = registry_->QueryCertificates(filter, {});
  ASSERT_TRUE(recorded);
  ASSERT_EQ(recorded->items.size(), 1u);
  EXPECT_EQ(recorded->items[0].serial, leaf->SerialHex());
  auto audit = registry_->ListAudit(0, 1000);
  ASSERT_TRUE(audit);
  bool issued = false;
  for (const auto& record : *audit) {
    issued |=
        record.action == registry::kAuditCertificateIssue && record.actor == "device:csr-dev-1";
  }
  EXPECT_TRUE(issued);
}

TEST_F(DeviceApiCsrTest, Refuses_SubjectOtherThanTheRegistrationId) {
  PutSymmetricEnrollment("csr-dev-2");
  ExpectRefused(Register("csr-dev-2", DeviceToken(kPrimary, "csr-dev-2"),
                         Body("csr-dev-2", {.subject = {{"CN", "someone-else"}}})),
                400, "400003", "is not the registration ID", "csr-dev-2");
}

TEST_F(DeviceApiCsrTest, Refuses_WeakKeyBadSignatureAndGarbage) {
  PutSymmetricEnrollment("csr-dev-3");
  std::string token = DeviceToken(kPrimary, "csr-dev-3");
  auto rsa1024 = ca::testing::TestKey("RSA-1024");
  ExpectRefused(
      Register("csr-dev-3", token,
               Body("csr-dev-3", {.subject = {{"CN", "csr-dev-3"}}, .key = rsa1024.get()})),
      400, "400003", "RSA", "csr-dev-3");
  ExpectRefused(
      Register("csr-dev-3", token,
               Body("csr-dev-3", {.subject = {{"CN", "csr-dev-3"}}, .corrupt_signature = true})),
      400, "400003", "csr:", "csr-dev-3");
  ExpectRefused(Register("csr-dev-3", token,
                         json{{"registrationId", "csr-dev-3"}, {"csr", "not base64!"}}.dump()),
                400, "400003", "base64", "csr-dev-3");
  ExpectRefused(
      Register("csr-dev-3", token, json{{"registrationId", "csr-dev-3"}, {"csr", 5}}.dump()), 400,
      "400003", "csr must be", "csr-dev-3");
}

TEST_F(DeviceApiCsrTest, Refuses_ACsrWhereNoAuthorityIssues) {
  PutSymmetricEnrollment("csr-dev-5");
  DeviceApi without_ca({kScope, {"hub-a"}, 1}, *registry_, *verifier_, clock_, random_);
  Request request;
  request.method = "PUT";
  request.target = std::string("/") + kScope +
                   "/registrations/csr-dev-5/register?api-version=2025-07-01-preview";
  request.body = Body("csr-dev-5", {.subject = {{"CN", "csr-dev-5"}}});
  request.headers = {{"authorization", DeviceToken(kPrimary, "csr-dev-5")}};
  auto target = ParseTarget(request.target);
  ASSERT_TRUE(target);
  ExpectRefused(without_ca.Handle(request, *target, "tracking"), 400, "400003",
                "does not issue certificates", "csr-dev-5");
}

TEST_F(DeviceApiCsrTest, Refuses_UnauthenticatedDeviceBeforeLookingAtTheRequest) {
  PutSymmetricEnrollment("csr-dev-4");
  ExpectRefused(Register("csr-dev-4", DeviceToken(kSecondary + std::string(""), "someone"),
                         Body("csr-dev-4", {.subject = {{"CN", "csr-dev-4"}}})),
                401, "401002", "", "csr-dev-4");
}

}  // namespace
}  // namespace devid::api
