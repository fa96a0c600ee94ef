// X.509 attestation through the real request path (protocol notes §3): the TLS layer hands the
// client's chain to the API in Request::peer_certificates_der; these tests put it there directly.
// Certificates come from in-memory test CAs.

#include <gmock/gmock.h>

#include "api/device_api.h"
#include "api/testing/api_fixture.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "ca/tls_identity.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class DeviceApiX509Test : public testing::ApiFixture {
 protected:
  pki::Certificate IssueDevice(const std::string& cn, ca::Authority* authority = nullptr,
                               std::string_view profile = ca::kDeviceClientProfile) {
    ca::CertificateRequest request{.common_name = cn};
    if (profile == ca::kServerProfile) request.dns_names = {"device.example"};
    auto issued = ca::IssueTlsIdentity(authority ? *authority : *authority_, profile, request);
    EXPECT_TRUE(issued) << issued.error().message();
    return std::move(issued->certificate);
  }

  const pki::Certificate& Intermediate() const { return authority_->issuers().front().certificate; }

  void PutX509Enrollment(const std::string& reg_id, const pki::Certificate& client) {
    registry::Enrollment e;
    e.registration_id = reg_id;
    e.settings.attestation.type = registry::AttestationType::kX509;
    e.settings.attestation.x509.client_primary_pem = client.ToPem();
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  }

  void PutX509Group(const std::string& group_id, const pki::Certificate& signer,
                    bool enabled = true) {
    registry::EnrollmentGroup g;
    g.enrollment_group_id = group_id;
    g.settings.attestation.type = registry::AttestationType::kX509;
    g.settings.attestation.x509.signing_primary_pem = signer.ToPem();
    g.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, {"test"}));
  }

  Response RegisterWith(const std::string& reg_id, std::vector<const pki::Certificate*> chain,
                        json body = json::object()) {
    Request request;
    request.method = "PUT";
    request.target = std::string("/") + kScope + "/registrations/" + reg_id +
                     "/register?api-version=2019-03-31";
    body["registrationId"] = reg_id;
    request.body = body.dump();
    for (const pki::Certificate* certificate : chain) {
      request.peer_certificates_der.push_back(certificate->ToDer());
    }
    return router_->Handle(request);
  }

  Response PollWith(const std::string& reg_id, const std::string& operation_id,
                    std::vector<const pki::Certificate*> chain) {
    Request request;
    request.method = "GET";
    request.target = std::string("/") + kScope + "/registrations/" + reg_id + "/operations/" +
                     operation_id + "?api-version=2019-03-31";
    for (const pki::Certificate* certificate : chain) {
      request.peer_certificates_der.push_back(certificate->ToDer());
    }
    return router_->Handle(request);
  }

  // ExpectRefused checks a 401 with the message and that nothing was stored or audited.
  void ExpectRefused(const Response& r, const std::string& reg_id, const std::string& message,
                     const std::string& code = "401002") {
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), code) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message));
    EXPECT_FALSE(registry_->GetRegistration(reg_id).has_value());
  }

  // Observed returns the inventory's records of certificate (none, or the one).
  std::vector<registry::CertificateRecord> Observed(const pki::Certificate& certificate) {
    registry::CertificateFilter filter;
    filter.sha256_thumbprint = certificate.Sha256Thumbprint();
    auto seen = registry_->QueryCertificates(filter, {});
    EXPECT_TRUE(seen);
    return seen ? seen->items : std::vector<registry::CertificateRecord>{};
  }
};

TEST_F(DeviceApiX509Test, IndividualEnrollment_RegistersByThumbprint_AndAnswersCertificateInfo) {
  pki::Certificate leaf = IssueDevice("x509-dev-1");
  PutX509Enrollment("x509-dev-1", leaf);
  Response r = RegisterWith("x509-dev-1", {&leaf});
  ASSERT_EQ(r.status, 202) << r.body;
  Response done = PollWith("x509-dev-1", Json(r)["operationId"], {&leaf});
  ASSERT_EQ(done.status, 200) << done.body;
  json state = Json(done)["registrationState"];
  EXPECT_EQ(state["status"], "assigned");
  EXPECT_EQ(state["x509"]["certificateInfo"]["sha256Thumbprint"], leaf.Sha256Thumbprint());
  EXPECT_EQ(state["x509"]["certificateInfo"]["subjectName"], "CN=x509-dev-1");
  EXPECT_FALSE(state["x509"].contains("enrollmentGroupId"));
  // The certificate is in the inventory as seen (it was issued elsewhere as far as it knows).
  registry::CertificateFilter filter;
  filter.sha256_thumbprint = leaf.Sha256Thumbprint();
  auto seen = registry_->QueryCertificates(filter, {});
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->items.size(), 1u);
  EXPECT_EQ(seen->items[0].source, registry::CertificateSource::kObserved);
}

TEST_F(DeviceApiX509Test, Records_RefusedCertificatesAsObserved) {
  // Discovery covers certificates devid refuses: one no enrollment trusts, and one refused only
  // after it was verified (its registration asks for a certificate with a malformed CSR).
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  pki::Certificate stranger = IssueDevice("x509-dev-8", other->get());
  EXPECT_EQ(RegisterWith("x509-dev-8", {&stranger}).status, 401);
  EXPECT_EQ(Observed(stranger).size(), 1u);

  pki::Certificate leaf = IssueDevice("x509-dev-9");
  PutX509Enrollment("x509-dev-9", leaf);
  Response r = RegisterWith("x509-dev-9", {&leaf}, json{{"csr", "not base64 DER"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_FALSE(registry_->GetRegistration("x509-dev-9"));
  ASSERT_EQ(Observed(leaf).size(), 1u);
  EXPECT_EQ(Observed(leaf).front().source, registry::CertificateSource::kObserved);
}

TEST_F(DeviceApiX509Test, Group_RegistersLeafAndIntermediateToVerifiedSigner) {
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate leaf = IssueDevice("x509-dev-2");
  Response r = RegisterWith("x509-dev-2", {&leaf, &Intermediate()});
  ASSERT_EQ(r.status, 202) << r.body;
  Response done = PollWith("x509-dev-2", Json(r)["operationId"], {&leaf, &Intermediate()});
  ASSERT_EQ(done.status, 200) << done.body;
  json x509 = Json(done)["registrationState"]["x509"];
  EXPECT_EQ(x509["enrollmentGroupId"], "x509-group");
  EXPECT_EQ(x509["signingCertificateInfo"]["subjectName"], "CN=Test Root CA");
  auto stored = registry_->GetRegistration("x509-dev-2");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->enrollment_group_id, "x509-group");
  EXPECT_EQ(stored->attestation_type, registry::AttestationType::kX509);
}

TEST_F(DeviceApiX509Test, Refuses_CommonNameOtherThanTheRegistrationId) {
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate leaf = IssueDevice("device-a");
  size_t audits = AuditCount();
  ExpectRefused(RegisterWith("device-b", {&leaf, &Intermediate()}), "device-b",
                "is not the registration ID");
  EXPECT_EQ(AuditCount(), audits);
}

TEST_F(DeviceApiX509Test, Refuses_ChainThatOmitsTheIntermediate) {
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate leaf = IssueDevice("x509-dev-3");
  ExpectRefused(RegisterWith("x509-dev-3", {&leaf}), "x509-dev-3",
                "unable to get local issuer certificate");
}

TEST_F(DeviceApiX509Test, Refuses_UntrustedRootAndUnknownCertificate) {
  PutX509Group("x509-group", authority_->roots().front());
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  pki::Certificate stranger = IssueDevice("x509-dev-4", other->get());
  ExpectRefused(RegisterWith("x509-dev-4", {&stranger, &(*other)->issuers().front().certificate}),
                "x509-dev-4", "does not validate");
}

TEST_F(DeviceApiX509Test, Refuses_LeafWithoutClientAuth) {
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate server = IssueDevice("x509-dev-5", nullptr, ca::kServerProfile);
  ExpectRefused(RegisterWith("x509-dev-5", {&server, &Intermediate()}), "x509-dev-5",
                "unsuitable certificate purpose");
}

TEST_F(DeviceApiX509Test, Refuses_ExpiredLeaf) {
  pki::Certificate leaf = IssueDevice("x509-dev-6");
  PutX509Enrollment("x509-dev-6", leaf);
  clock_.Advance(std::chrono::hours(24 * 400));
  ExpectRefused(RegisterWith("x509-dev-6", {&leaf}), "x509-dev-6", "certificate has expired");
}

TEST_F(DeviceApiX509Test, Refuses_RevokedOrExpiredAfterItsPathWasRemembered) {
  // The validated path is remembered between requests; revocation and expiry still decide each.
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate leaf = IssueDevice("x509-dev-10");
  pki::Certificate other = IssueDevice("x509-dev-11");
  ASSERT_TRUE(registry_->RecordCertificate(
      ca::InventoryRecord(leaf, registry::CertificateSource::kIssued, "x509-dev-10",
                          std::string(ca::kDeviceClientProfile)),
      registry::kAuditCertificateIssue, {"test"}));
  for (const auto* device : {&leaf, &other}) {
    std::string id = device->SubjectCommonName();
    Response r = RegisterWith(id, {device, &Intermediate()});
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_EQ(PollWith(id, Json(r)["operationId"], {device, &Intermediate()}).status, 200);
  }
  std::string operation =
      Json(RegisterWith("x509-dev-10", {&leaf, &Intermediate()}))["operationId"];
  registry::CertificateFilter filter;
  filter.sha256_thumbprint = leaf.Sha256Thumbprint();
  ASSERT_TRUE(registry_->RevokeCertificates(filter, 1, {"test"}));
  Response revoked = PollWith("x509-dev-10", operation, {&leaf, &Intermediate()});
  EXPECT_EQ(revoked.status, 401) << revoked.body;
  EXPECT_THAT(revoked.body, HasSubstr("was revoked"));

  clock_.Set(other.NotAfter());
  Response expired = RegisterWith("x509-dev-11", {&other, &Intermediate()});
  EXPECT_EQ(expired.status, 401) << expired.body;
  EXPECT_THAT(expired.body, HasSubstr("certificate has expired"));
}

TEST_F(DeviceApiX509Test, Refuses_CertificateRevokedInTheInventory) {
  PutX509Group("x509-group", authority_->roots().front());
  pki::Certificate leaf = IssueDevice("x509-dev-7");
  ASSERT_TRUE(registry_->RecordCertificate(
      ca::InventoryRecord(leaf, registry::CertificateSource::kIssued, "x509-dev-7",
                          std::string(ca::kDeviceClientProfile)),
      registry::kAuditCertificateIssue, {"test"}));
  registry::CertificateFilter filter;
  filter.serial = leaf.SerialHex();
  ASSERT_TRUE(registry_->RevokeCertificates(filter, 1, {"test"}));
  ExpectRefused(RegisterWith("x509-dev-7", {&leaf, &Intermediate()}), "x509-dev-7",
                "was revoked");
}

TEST_F(DeviceApiX509Test, Refuses_DisabledGroup) {
  PutX509Group("x509-group", authority_->roots().front(), /*enabled=*/false);
  pki::Certificate leaf = IssueDevice("x509-dev-8");
  ExpectRefused(RegisterWith("x509-dev-8", {&leaf, &Intermediate()}), "x509-dev-8", "disabled",
                "401004");
}

TEST_F(DeviceApiX509Test, Refuses_NoCredentialAtAll) {
  ExpectRefused(RegisterWith("x509-dev-9", {}), "x509-dev-9", "");
}

}  // namespace
}  // namespace devid::api
