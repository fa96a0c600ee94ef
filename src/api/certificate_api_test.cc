// The certificate inventory service API: query filters, show, revocation by serial, thumbprint
// and device, and every refusal (leaving the store unchanged).

#include "api/certificate_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/testing/api_fixture.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "ca/tls_identity.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class CertificateApiTest : public testing::ApiFixture {
 protected:
  // Issue has the test CA issue a device-client certificate for device and records it.
  registry::CertificateRecord Issue(const std::string& device) {
    auto issued =
        ca::IssueTlsIdentity(*authority_, ca::kDeviceClientProfile, {.common_name = device});
    EXPECT_TRUE(issued) << issued.error().message();
    auto record = ca::InventoryRecord(issued->certificate, registry::CertificateSource::kIssued,
                                      device, std::string(ca::kDeviceClientProfile));
    EXPECT_TRUE(registry_->RecordCertificate(record, registry::kAuditCertificateIssue, {"test"}));
    return record;
  }

  Response Revoke(const json& body) { return Service("POST", "/certificates/revoke", body); }

  json Query(const json& filter) {
    Response r = Service("POST", "/certificates/query", filter);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r);
  }
};

TEST_F(CertificateApiTest, Query_FiltersByDeviceRevokedAndExpiry) {
  Issue("dev-a");
  Issue("dev-a");
  auto b = Issue("dev-b");
  EXPECT_EQ(Query(json::object()).size(), 3u);
  EXPECT_EQ(Query({{"deviceId", "dev-a"}}).size(), 2u);
  json by_serial = Query({{"serialNumber", b.serial}});
  ASSERT_EQ(by_serial.size(), 1u);
  EXPECT_EQ(by_serial[0]["deviceId"], "dev-b");
  EXPECT_EQ(by_serial[0]["status"], "valid");
  EXPECT_EQ(by_serial[0]["source"], "issued");
  EXPECT_EQ(by_serial[0]["profile"], "device-client");
  EXPECT_FALSE(by_serial[0].contains("certificate"));  // lists carry no PEM
  // device-client certificates live a year: none expire within 30 days, all within 400.
  EXPECT_EQ(Query({{"expiringWithinSeconds", 30 * 86400}}).size(), 0u);
  EXPECT_EQ(Query({{"expiringWithinSeconds", 400 * 86400}}).size(), 3u);
  EXPECT_EQ(Query({{"revoked", true}}).size(), 0u);
}

TEST_F(CertificateApiTest, Query_PagesWithContinuation) {
  for (int i = 0; i < 3; ++i) Issue("dev-" + std::to_string(i));
  Response first =
      Service("POST", "/certificates/query", json::object(), {{"x-ms-max-item-count", "2"}});
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Json(first).size(), 2u);
  std::string continuation;
  for (const auto& [k, v] : first.headers) {
    if (k == "x-ms-continuation") continuation = v;
  }
  ASSERT_FALSE(continuation.empty());
  Response second = Service("POST", "/certificates/query", json::object(),
                            {{"x-ms-max-item-count", "2"}, {"x-ms-continuation", continuation}});
  EXPECT_EQ(Json(second).size(), 1u);
}

TEST_F(CertificateApiTest, Show_ByEitherThumbprint_WithPem) {
  auto record = Issue("dev-a");
  for (const std::string& thumbprint : {record.sha256_thumbprint, record.sha1_thumbprint}) {
    Response r = Service("GET", "/certificates/" + thumbprint);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["serialNumber"], record.serial);
    EXPECT_THAT(Json(r)["certificate"].get<std::string>(), HasSubstr("BEGIN CERTIFICATE"));
  }
  Response missing = Service("GET", "/certificates/" + std::string(64, 'A'));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(ErrorCodeHeader(missing), "404005");
  Response bad = Service("GET", "/certificates/xyz");
  EXPECT_EQ(bad.status, 400);
}

TEST_F(CertificateApiTest, Revoke_BySerialWithReason_IsAuditedAndIdempotent) {
  auto record = Issue("dev-a");
  size_t audits = AuditCount();
  // Serials are accepted with colons, lowercase and leading zeros, as tools print them.
  std::string spelled = "00:";
  for (size_t i = 0; i < record.serial.size(); i += 2) {
    spelled += static_cast<char>(std::tolower(record.serial[i]));
    spelled += static_cast<char>(std::tolower(record.serial[i + 1]));
    if (i + 2 < record.serial.size()) spelled += ':';
  }
  Response r = Revoke({{"serialNumber", spelled}, {"reason", "keyCompromise"}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Json(r)["revoked"].size(), 1u);
  EXPECT_EQ(Json(r)["revoked"][0]["status"], "revoked");
  EXPECT_EQ(Json(r)["revoked"][0]["revocationReason"], "keyCompromise");
  EXPECT_EQ(AuditCount(), audits + 1);
  auto last = registry_->ListAudit(0, 100000);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->back().action, registry::kAuditCertificateRevoke);
  EXPECT_EQ(last->back().actor, "service:provisioningserviceowner");

  Response again = Revoke({{"serialNumber", record.serial}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_TRUE(Json(again)["revoked"].empty());
  EXPECT_EQ(AuditCount(), audits + 1);
}

TEST_F(CertificateApiTest, Revoke_ByThumbprintAndByDevice) {
  auto a1 = Issue("dev-a");
  Issue("dev-a");
  auto b = Issue("dev-b");
  Response by_thumbprint = Revoke({{"thumbprint", b.sha256_thumbprint}, {"reason", 4}});
  ASSERT_EQ(by_thumbprint.status, 200) << by_thumbprint.body;
  EXPECT_EQ(Json(by_thumbprint)["revoked"][0]["revocationReason"], "superseded");
  Response by_device = Revoke({{"deviceId", "dev-a"}, {"reason", "cessationOfOperation"}});
  ASSERT_EQ(by_device.status, 200) << by_device.body;
  EXPECT_EQ(Json(by_device)["revoked"].size(), 2u);
  EXPECT_EQ(Query({{"revoked", true}}).size(), 3u);
  EXPECT_EQ(Query({{"revoked", false}}).size(), 0u);
}

TEST_F(CertificateApiTest, Revoke_RefusesBadRequestsAndChangesNothing) {
  auto record = Issue("dev-a");
  size_t audits = AuditCount();
  struct Case {
    json body;
    int status;
    std::string code;
    std::string message;
  };
  std::vector<Case> cases = {
      {{{"serialNumber", "0BADC0FFEE"}}, 404, "404005", "no certificate devid issued matches"},
      {{{"deviceId", "nobody"}}, 404, "404005", "no certificate devid issued matches"},
      {{{"serialNumber", record.serial}, {"reason", "removeFromCRL"}},
       400,
       "400003",
       "unknown revocation reason"},
      {{{"serialNumber", record.serial}, {"reason", 7}}, 400, "400003", "unknown revocation"},
      {{{"serialNumber", record.serial}, {"deviceId", "dev-a"}}, 400, "400003", "exactly one"},
      {{{"reason", "keyCompromise"}}, 400, "400003", "exactly one"},
      {{{"serialNumber", "xyz"}}, 400, "400003", "hexadecimal"},
      {{{"thumbprint", "ABCD"}}, 400, "400003", "SHA-256"},
      {{{"serialNumber", record.serial}, {"everything", true}}, 400, "400003", "unknown field"},
  };
  for (const Case& c : cases) {
    Response r = Revoke(c.body);
    EXPECT_EQ(r.status, c.status) << c.body.dump() << " " << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), c.code) << c.body.dump();
    EXPECT_THAT(r.body, HasSubstr(c.message)) << c.body.dump();
  }
  Response not_json = Send("POST", "/certificates/revoke?api-version=2021-10-01", "[1",
                           {{"authorization", ServiceToken()}});
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(Query({{"revoked", true}}).size(), 0u);
}

TEST_F(CertificateApiTest, Query_RefusesBadFilters) {
  Issue("dev-a");
  struct Case {
    json filter;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{{"owner", "x"}}, "unknown filter field"},
           {{{"source", "stolen"}}, "source must be"},
           {{{"revoked", "yes"}}, "revoked must be true or false"},
           {{{"expiringWithinSeconds", -1}}, "non-negative integer"},
           {{{"expiringWithinSeconds", "30d"}}, "non-negative integer"},
           {{{"deviceId", 5}}, "deviceId must be a string"},
           {{{"serialNumber", "zz"}}, "hexadecimal"},
       }) {
    Response r = Service("POST", "/certificates/query", c.filter);
    EXPECT_EQ(r.status, 400) << c.filter.dump() << " " << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), "400003") << c.filter.dump();
    EXPECT_THAT(r.body, HasSubstr(c.message)) << c.filter.dump();
  }
  Response not_object = Service("POST", "/certificates/query", json::array());
  EXPECT_EQ(not_object.status, 400);
  EXPECT_EQ(ErrorCodeHeader(not_object), "400002");
  Response bad_page =
      Service("POST", "/certificates/query", json::object(), {{"x-ms-max-item-count", "0"}});
  EXPECT_EQ(bad_page.status, 400);
}

TEST_F(CertificateApiTest, NeedsServiceCredentialsWithTheRight) {
  auto record = Issue("dev-a");
  Response anonymous = Send("POST", "/certificates/revoke?api-version=2021-10-01",
                            json{{"serialNumber", record.serial}}.dump());
  EXPECT_EQ(anonymous.status, 401);
  // The reader policy may list but not revoke.
  std::vector<Header> reader = {{"authorization", ServiceToken("reader")}};
  Response list = Send("POST", "/certificates/query?api-version=2021-10-01", "{}", reader);
  EXPECT_EQ(list.status, 200) << list.body;
  Response revoke = Send("POST", "/certificates/revoke?api-version=2021-10-01",
                         json{{"serialNumber", record.serial}}.dump(), reader);
  EXPECT_EQ(revoke.status, 401);
  EXPECT_EQ(ErrorCodeHeader(revoke), "401005");
  EXPECT_EQ(Query({{"revoked", true}}).size(), 0u);
  Response wrong_method = Service("GET", "/certificates/revoke");
  EXPECT_EQ(wrong_method.status, 405);
}

}  // namespace
}  // namespace devid::api
