// CA certificates with proof of possession (CaCertificateApi) and the enrollment groups they back,
// through the real request path on SQLite. The CA under test is the test authority's issuing CA,
// whose key the authority signs with, so a "proof" is a certificate it issues with CN = the code.

#include "api/ca_certificate_api.h"

#include <gmock/gmock.h>

#include "api/target.h"
#include "api/testing/api_fixture.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class CaCertificateApiTest : public testing::ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    api_ = std::make_unique<CaCertificateApi>(*registry_, *auth_, clock_, random_);
  }
  void TearDown() override {
    api_.reset();
    ApiFixture::TearDown();
  }

  // Call sends a service request to the CA certificate API.
  Response Call(std::string method, const std::string& path, const json& body = nullptr,
                std::vector<Header> headers = {}) {
    Request request;
    request.method = std::move(method);
    request.target = path + "?api-version=2021-10-01";
    request.body = body.is_null() ? "" : body.dump();
    request.headers = std::move(headers);
    request.headers.emplace_back("authorization", ServiceToken());
    auto target = ParseTarget(request.target);
    EXPECT_TRUE(target);
    EXPECT_TRUE(api_->Matches(*target));
    return api_->Handle(request, *target, "test-tracking-id");
  }

  const pki::Certificate& IssuingCa() const { return authority_->issuers().front().certificate; }

  pki::Certificate Issue(const std::string& cn, ca::Authority* authority = nullptr) {
    auto issued = ca::IssueTlsIdentity(authority ? *authority : *authority_,
                                       ca::kDeviceClientProfile, {.common_name = cn});
    EXPECT_TRUE(issued) << issued.error().message();
    return std::move(issued->certificate);
  }

  Response Upload(const std::string& name, const pki::Certificate& certificate) {
    return Call("PUT", "/caCertificates/" + name, {{"certificate", certificate.ToPem()}});
  }

  std::string NewCode(const std::string& name) {
    Response r = Call("POST", "/caCertificates/" + name + "/verificationCode");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r).value("verificationCode", "");
  }

  Response Verify(const std::string& name, const pki::Certificate& proof) {
    return Call("POST", "/caCertificates/" + name + "/verify", {{"certificate", proof.ToPem()}});
  }

  // UploadVerified uploads the issuing CA as name and proves possession of its key.
  void UploadVerified(const std::string& name) {
    ASSERT_EQ(Upload(name, IssuingCa()).status, 200);
    Response r = Verify(name, Issue(NewCode(name)));
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // ExpectRefused checks the error code and message, and that the CA certificate and the audit log
  // did not change.
  void ExpectRefused(const Response& r, int status, const std::string& code,
                     const std::string& message, const registry::CaCertificate& before,
                     size_t audit_before) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), code) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message));
    auto now = registry_->GetCaCertificate(before.name);
    ASSERT_TRUE(now);
    EXPECT_EQ(now->etag, before.etag);
    EXPECT_EQ(now->verified, before.verified);
    EXPECT_EQ(now->verification_code_hash, before.verification_code_hash);
    EXPECT_EQ(AuditCount(), audit_before);
  }

  registry::CaCertificate Stored(const std::string& name) {
    auto stored = registry_->GetCaCertificate(name);
    EXPECT_TRUE(stored) << stored.error().message();
    return stored.value_or(registry::CaCertificate{});
  }

  json GroupOver(const std::string& group_id, const std::string& ca_name) {
    return {
        {"enrollmentGroupId", group_id},
        {"attestation", {{"type", "x509"}, {"x509", {{"caReferences", {{"primary", ca_name}}}}}}}};
  }

  Response RegisterWith(const std::string& reg_id, std::vector<const pki::Certificate*> chain) {
    Request request;
    request.method = "PUT";
    request.target =
        std::string("/") + kScope + "/registrations/" + reg_id + "/register?api-version=2019-03-31";
    request.body = json{{"registrationId", reg_id}}.dump();
    for (const pki::Certificate* certificate : chain) {
      request.peer_certificates_der.push_back(certificate->ToDer());
    }
    return router_->Handle(request);
  }

  std::unique_ptr<CaCertificateApi> api_;
};

TEST_F(CaCertificateApiTest, Verifies_UploadedCaWithProofOfPossession) {
  Response up = Upload("issuing", IssuingCa());
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(Json(up)["isVerified"], false);
  EXPECT_EQ(Json(up)["sha256Thumbprint"], IssuingCa().Sha256Thumbprint());
  EXPECT_EQ(Json(up)["subject"], "CN=Test Issuing CA");

  Response code = Call("POST", "/caCertificates/issuing/verificationCode");
  ASSERT_EQ(code.status, 200) << code.body;
  std::string value = Json(code)["verificationCode"];
  EXPECT_EQ(value.size(), 32u);
  EXPECT_TRUE(Json(code).contains("verificationCodeExpires"));
  // Only the code's hash is kept.
  EXPECT_NE(Stored("issuing").verification_code_hash, value);
  EXPECT_THAT(Stored("issuing").verification_code_hash, ::testing::Not(HasSubstr(value)));

  Response verified = Verify("issuing", Issue(value));
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(Json(verified)["isVerified"], true);
  EXPECT_FALSE(Json(verified).contains("verificationCodeExpires"));
  EXPECT_TRUE(Stored("issuing").verified);

  Response list = Call("GET", "/caCertificates");
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(Json(list).size(), 1u);
  EXPECT_EQ(Json(list)[0]["name"], "issuing");
  EXPECT_EQ(Json(list)[0]["isVerified"], true);
  Response show = Call("GET", "/caCertificates/issuing");
  ASSERT_EQ(show.status, 200);
  EXPECT_EQ(Json(show)["certificate"], IssuingCa().ToPem());

  auto audit = registry_->ListAudit(0, 100);
  ASSERT_TRUE(audit);
  std::vector<std::string> actions;
  for (const auto& r : *audit) actions.push_back(r.action);
  EXPECT_THAT(actions,
              ::testing::ElementsAre("caCertificate.create", "caCertificate.verificationCode",
                                     "caCertificate.verify"));
}

TEST_F(CaCertificateApiTest, Accepts_Base64DerUpload) {
  std::string der = IssuingCa().ToDer();
  Response up =
      Call("PUT", "/caCertificates/issuing",
           {{"certificate", ossl::Base64Encode(std::vector<uint8_t>(der.begin(), der.end()))}});
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(Stored("issuing").der, der);
}

TEST_F(CaCertificateApiTest, Rejects_ProofWhoseCnIsNotTheCode) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  NewCode("issuing");
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", Issue("0123456789ABCDEF0123456789ABCDEF")), 400, "400008",
                "the subject CN is not the pending verification code", before, audit);
}

TEST_F(CaCertificateApiTest, Rejects_ProofSignedByAnotherKey) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  std::string code = NewCode("issuing");
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other) << other.error().message();
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", Issue(code, other->get())), 400, "400009",
                "not signed by this CA's key", before, audit);
}

TEST_F(CaCertificateApiTest, Rejects_ExpiredCode) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  std::string code = NewCode("issuing");
  clock_.Advance(CaCertificateApi::kCodeLifetime + std::chrono::seconds(1));
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", Issue(code)), 400, "400008", "the verification code has expired",
                before, audit);
}

TEST_F(CaCertificateApiTest, Rejects_ReusedCode) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  pki::Certificate proof = Issue(NewCode("issuing"));
  ASSERT_EQ(Verify("issuing", proof).status, 200);
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", proof), 400, "400008", "no verification code is pending", before,
                audit);
}

TEST_F(CaCertificateApiTest, Rejects_ProofNotValidNow) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  std::string code = NewCode("issuing");
  auto now = clock_.Now();
  clock_.Set(now + std::chrono::hours(24 * 400));  // issued in the future: not yet valid
  pki::Certificate proof = Issue(code);
  clock_.Set(now);
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", proof), 400, "400009", "is not valid now", before, audit);
}

TEST_F(CaCertificateApiTest, Rejects_VerifyWithoutCodeOrOfUnknownCa) {
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Verify("issuing", Issue("ANY")), 400, "400008", "no verification code is pending",
                before, audit);
  Response unknown = Verify("nope", Issue("ANY"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(ErrorCodeHeader(unknown), "404006");
  Response code = Call("POST", "/caCertificates/nope/verificationCode");
  EXPECT_EQ(ErrorCodeHeader(code), "404006");
  EXPECT_EQ(AuditCount(), audit);
}

TEST_F(CaCertificateApiTest, Rejects_UploadOfNonCaOrGarbage) {
  Response leaf = Upload("leaf", Issue("device-1"));
  EXPECT_EQ(leaf.status, 400);
  EXPECT_EQ(ErrorCodeHeader(leaf), "400007");
  EXPECT_THAT(leaf.body, HasSubstr("is not a CA certificate"));
  Response garbage = Call("PUT", "/caCertificates/junk", {{"certificate", "bm90IGEgY2VydA=="}});
  EXPECT_EQ(ErrorCodeHeader(garbage), "400007");
  Response missing = Call("PUT", "/caCertificates/junk", json::object());
  EXPECT_EQ(ErrorCodeHeader(missing), "400007");
  EXPECT_EQ(AuditCount(), 0u);
  auto all = registry_->QueryCaCertificates({});
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->items.empty());
}

TEST_F(CaCertificateApiTest, Replaces_CertificateOnlyWithMatchingEtagAndUnverifiesIt) {
  UploadVerified("issuing");
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  Response stale =
      Call("PUT", "/caCertificates/issuing", {{"certificate", authority_->roots().front().ToPem()}},
           {{"if-match", "stale"}});
  ExpectRefused(stale, 412, "412001", "etag mismatch", before, audit);
  Response replaced =
      Call("PUT", "/caCertificates/issuing", {{"certificate", authority_->roots().front().ToPem()}},
           {{"if-match", before.etag}});
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(Json(replaced)["isVerified"], false);
}

TEST_F(CaCertificateApiTest, Refuses_GroupOverUnknownOrUnverifiedCa) {
  size_t audit = AuditCount();
  Response unknown = Service("PUT", "/enrollmentGroups/fleet", GroupOver("fleet", "nope"));
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_EQ(ErrorCodeHeader(unknown), "400010");
  EXPECT_THAT(unknown.body, HasSubstr("\\\"nope\\\" is not uploaded"));
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  audit = AuditCount();
  Response unverified = Service("PUT", "/enrollmentGroups/fleet", GroupOver("fleet", "issuing"));
  EXPECT_EQ(unverified.status, 400) << unverified.body;
  EXPECT_EQ(ErrorCodeHeader(unverified), "400010");
  EXPECT_THAT(unverified.body, HasSubstr("is not verified"));
  Response bulk =
      Service("POST", "/enrollmentGroups",
              {{"mode", "create"}, {"enrollmentGroups", {GroupOver("fleet", "issuing")}}});
  EXPECT_EQ(ErrorCodeHeader(bulk), "400010");
  EXPECT_FALSE(registry_->GetEnrollmentGroup("fleet"));
  EXPECT_EQ(AuditCount(), audit);
}

TEST_F(CaCertificateApiTest, Refuses_DeleteWhileAGroupReferencesIt) {
  UploadVerified("issuing");
  ASSERT_EQ(Service("PUT", "/enrollmentGroups/fleet", GroupOver("fleet", "issuing")).status, 200);
  auto before = Stored("issuing");
  size_t audit = AuditCount();
  ExpectRefused(Call("DELETE", "/caCertificates/issuing"), 409, "409002",
                "enrollment group \\\"fleet\\\" references it", before, audit);
  ASSERT_EQ(Service("DELETE", "/enrollmentGroups/fleet").status, 204);
  EXPECT_EQ(Call("DELETE", "/caCertificates/issuing").status, 204);
  EXPECT_FALSE(registry_->GetCaCertificate("issuing"));
}

TEST_F(CaCertificateApiTest, Registers_DeviceThroughGroupOverVerifiedCa) {
  UploadVerified("issuing");
  ASSERT_EQ(Service("PUT", "/enrollmentGroups/fleet", GroupOver("fleet", "issuing")).status, 200);
  pki::Certificate leaf = Issue("ca-dev-1");
  Response r = RegisterWith("ca-dev-1", {&leaf, &IssuingCa()});
  ASSERT_EQ(r.status, 202) << r.body;
  auto stored = registry_->GetRegistration("ca-dev-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->enrollment_group_id, "fleet");
}

TEST_F(CaCertificateApiTest, Refuses_DeviceWhenReferencedCaIsNoLongerVerified) {
  UploadVerified("issuing");
  ASSERT_EQ(Service("PUT", "/enrollmentGroups/fleet", GroupOver("fleet", "issuing")).status, 200);
  // Uploading it again (a renewed certificate, say) drops the verification until proved again.
  ASSERT_EQ(Upload("issuing", IssuingCa()).status, 200);
  pki::Certificate leaf = Issue("ca-dev-2");
  Response r = RegisterWith("ca-dev-2", {&leaf, &IssuingCa()});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(ErrorCodeHeader(r), "401002");
  EXPECT_THAT(r.body, HasSubstr("is not verified"));
  EXPECT_FALSE(registry_->GetRegistration("ca-dev-2"));
}

TEST_F(CaCertificateApiTest, Refuses_DeviceWhenGroupNamesUnknownCa) {
  // A group written to the store directly (or whose CA vanished in a race) admits nobody.
  registry::EnrollmentGroup g;
  g.enrollment_group_id = "orphan";
  g.settings.attestation.type = registry::AttestationType::kX509;
  g.settings.attestation.x509.ca_reference_primary = "gone";
  ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, {"test"}));
  pki::Certificate leaf = Issue("ca-dev-3");
  Response r = RegisterWith("ca-dev-3", {&leaf, &IssuingCa()});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\\\"gone\\\" is not uploaded"));
  EXPECT_FALSE(registry_->GetRegistration("ca-dev-3"));
}

TEST_F(CaCertificateApiTest, Requires_WriteRightToChangeAndReadRightToList) {
  Request request;
  request.method = "PUT";
  request.target = "/caCertificates/issuing?api-version=2021-10-01";
  request.body = json{{"certificate", IssuingCa().ToPem()}}.dump();
  request.headers.emplace_back("authorization", ServiceToken("reader"));
  auto target = ParseTarget(request.target);
  ASSERT_TRUE(target);
  Response r = api_->Handle(request, *target, "t");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ErrorCodeHeader(r), "401005");
  EXPECT_FALSE(registry_->GetCaCertificate("issuing"));
  request.method = "GET";
  request.target = "/caCertificates?api-version=2021-10-01";
  target = ParseTarget(request.target);
  EXPECT_EQ(api_->Handle(request, *target, "t").status, 200);
}

}  // namespace
}  // namespace devid::api
