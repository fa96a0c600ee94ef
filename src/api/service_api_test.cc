#include "api/service_api.h"

#include <gmock/gmock.h>

#include "api/testing/api_fixture.h"
#include "tpm/testing/software_tpm.h"

namespace devid::api {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class ServiceApiTest : public testing::ApiFixture {
 protected:
  json SymmetricEnrollment(const std::string& id) {
    return {{"registrationId", id},
            {"attestation", {{"type", "symmetricKey"}}},
            {"initialTwin", {{"tags", {{"site", "lab"}}}}},
            {"iotHubs", {"hub-a"}}};
  }

  void ExpectRefused(const Response& r, int code, std::string_view message, size_t audit_before) {
    EXPECT_EQ(r.status, code / 1000) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), std::to_string(code));
    EXPECT_THAT(Json(r)["message"].get<std::string>(), HasSubstr(message));
    EXPECT_EQ(AuditCount(), audit_before);
  }

  std::string HeaderOf(const Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }
};

TEST_F(ServiceApiTest, Creates_EnrollmentWithGeneratedKeys) {
  Response r = Service("PUT", "/enrollments/sym-dev-1", SymmetricEnrollment("sym-dev-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  json e = Json(r);
  EXPECT_EQ(e["registrationId"], "sym-dev-1");
  EXPECT_EQ(e["provisioningStatus"], "enabled");
  EXPECT_EQ(e["initialTwin"]["tags"]["site"], "lab");
  auto primary = ossl::Base64Decode(e["attestation"]["symmetricKey"]["primaryKey"].get<std::string>());
  auto secondary =
      ossl::Base64Decode(e["attestation"]["symmetricKey"]["secondaryKey"].get<std::string>());
  ASSERT_TRUE(primary && secondary);
  EXPECT_EQ(primary->size(), 64u);
  EXPECT_NE(*primary, *secondary);
  EXPECT_FALSE(e["etag"].get<std::string>().empty());

  Response got = Service("GET", "/enrollments/sym-dev-1");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(Json(got)["attestation"], e["attestation"]);
}

TEST_F(ServiceApiTest, Updates_WithMatchingEtag_AndRefusesAStaleOne) {
  json created = Json(Service("PUT", "/enrollments/d1", SymmetricEnrollment("d1")));
  json update = created;
  update["provisioningStatus"] = "disabled";
  Response ok = Service("PUT", "/enrollments/d1", update, {{"if-match", created["etag"]}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json(ok)["provisioningStatus"], "disabled");
  EXPECT_NE(Json(ok)["etag"], created["etag"]);
  EXPECT_EQ(Json(ok)["attestation"], created["attestation"]);

  size_t audit = AuditCount();
  update["provisioningStatus"] = "enabled";
  ExpectRefused(Service("PUT", "/enrollments/d1", update, {{"if-match", created["etag"]}}), 412001,
                "etag", audit);
  EXPECT_FALSE(registry_->GetEnrollment("d1")->settings.enabled);
  ExpectRefused(Service("DELETE", "/enrollments/d1", nullptr, {{"if-match", "\"stale\""}}), 412001,
                "etag", audit);
  EXPECT_TRUE(registry_->GetEnrollment("d1"));
}

TEST_F(ServiceApiTest, Deletes_Enrollment) {
  Service("PUT", "/enrollments/d1", SymmetricEnrollment("d1"));
  EXPECT_EQ(Service("DELETE", "/enrollments/d1").status, 204);
  Response gone = Service("GET", "/enrollments/d1");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(ErrorCodeHeader(gone), "404001");
  EXPECT_EQ(Service("DELETE", "/enrollments/d1").status, 404);
}

TEST_F(ServiceApiTest, Rejects_InvalidFieldsNamingTheField) {
  size_t audit = AuditCount();
  json bad = SymmetricEnrollment("d1");
  bad["attestation"]["symmetricKey"] = {{"primaryKey", "not base64!"}};
  ExpectRefused(Service("PUT", "/enrollments/d1", bad), 400003,
                "attestation.symmetricKey.primaryKey", audit);
  bad = SymmetricEnrollment("d1");
  bad["provisioningStatus"] = "maybe";
  ExpectRefused(Service("PUT", "/enrollments/d1", bad), 400003, "provisioningStatus", audit);
  bad = SymmetricEnrollment("d1");
  bad["attestation"]["type"] = "password";
  ExpectRefused(Service("PUT", "/enrollments/d1", bad), 400003, "attestation.type", audit);
  bad = SymmetricEnrollment("d1");
  bad["allocationPolicy"] = "geoLatency";
  ExpectRefused(Service("PUT", "/enrollments/d1", bad), 400003, "allocationPolicy", audit);
  bad = SymmetricEnrollment("other");
  ExpectRefused(Service("PUT", "/enrollments/d1", bad), 400005, "does not match", audit);
  Response r = Send("PUT", "/enrollments/d1?api-version=2021-10-01", "{not json",
                    {{"authorization", ServiceToken()}});
  ExpectRefused(r, 400002, "JSON", audit);
}

TEST_F(ServiceApiTest, RoundTrips_TpmEkCertificateRequirementAndPcrPolicy) {
  tpm::testing::SoftwareTpm tpm;
  std::string digest(64, 'a');
  json enrollment = {
      {"registrationId", "tpm-1"},
      {"attestation",
       {{"type", "tpm"},
        {"tpm",
         {{"endorsementKey", tpm.EkBase64()},
          {"requireEndorsementKeyCertificate", true},
          {"pcrPolicy", {{"pcrs", {0, 7}}, {"digest", digest}}}}}}}};
  Response r = Service("PUT", "/enrollments/tpm-1", enrollment);
  ASSERT_EQ(r.status, 200) << r.body;
  json expected_tpm = {{"endorsementKey", tpm.EkBase64()},
                       {"requireEndorsementKeyCertificate", true},
                       {"pcrPolicy",
                        {{"hashAlgorithm", "sha256"}, {"pcrs", {0, 7}}, {"digests", {digest}}}}};
  EXPECT_EQ(Json(r)["attestation"]["tpm"], expected_tpm);
  EXPECT_EQ(Json(Service("GET", "/enrollments/tpm-1"))["attestation"]["tpm"], expected_tpm);
  auto stored = registry_->GetEnrollment("tpm-1");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->settings.attestation.tpm.require_ek_certificate);
  EXPECT_EQ(stored->settings.attestation.tpm.pcr_policy, "sha256:0,7:" + digest);

  size_t audit = AuditCount();
  for (const auto& [policy, message] : std::vector<std::pair<json, std::string>>{
           {{{"pcrs", {0, 7}}}, "1 to 64 digests"},
           {{{"pcrs", {7, 0}}, {"digest", digest}}, "ascending"},
           {{{"pcrs", {0}}, {"digest", "abcd"}}, "32"},
           {{{"hashAlgorithm", "md5"}, {"pcrs", {0}}, {"digest", digest}}, "md5"},
           {{{"digest", digest}}, "pcrs must be an array"},
       }) {
    json bad = enrollment;
    bad["registrationId"] = "tpm-2";
    bad["attestation"]["tpm"]["pcrPolicy"] = policy;
    ExpectRefused(Service("PUT", "/enrollments/tpm-2", bad), 400003,
                  "attestation.tpm.pcrPolicy: ", audit);
    ExpectRefused(Service("PUT", "/enrollments/tpm-2", bad), 400003, message, audit);
  }
  EXPECT_FALSE(registry_->GetEnrollment("tpm-2"));
}

TEST_F(ServiceApiTest, Rejects_MissingAuthorization) {
  size_t audit = AuditCount();
  Response r = Send("PUT", "/enrollments/d1?api-version=2021-10-01",
                    SymmetricEnrollment("d1").dump(), {});
  ExpectRefused(r, 401002, "no Authorization", audit);
}

TEST_F(ServiceApiTest, Rejects_DeviceTokenOnTheServiceApi) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  Response r = Send("GET", "/enrollments/sym-dev-1?api-version=2021-10-01", "",
                    {{"authorization", DeviceToken(kPrimary, "sym-dev-1")}});
  ExpectRefused(r, 401002, "sr does not cover", audit);
  // Even with sr = the host, a device key name is no policy.
  std::string token = pki::CreateSasToken(Key(kPrimary), kHost, Now() + 60, "registration");
  r = Send("GET", "/enrollments/sym-dev-1?api-version=2021-10-01", "", {{"authorization", token}});
  ExpectRefused(r, 401002, "names no shared access policy", audit);
}

TEST_F(ServiceApiTest, Rejects_WrongPolicyKeyAndExpiredToken) {
  size_t audit = AuditCount();
  Response r = Send("GET", "/enrollments/x?api-version=2021-10-01", "",
                    {{"authorization", ServiceToken("provisioningserviceowner", kPrimary)}});
  ExpectRefused(r, 401002, "signature does not verify", audit);
  r = Send("GET", "/enrollments/x?api-version=2021-10-01", "",
           {{"authorization", ServiceToken("provisioningserviceowner", kOwnerKey, -5)}});
  ExpectRefused(r, 401002, "expired", audit);
}

TEST_F(ServiceApiTest, Rejects_WriteWithAReadOnlyPolicy) {
  size_t audit = AuditCount();
  Response r = Send("PUT", "/enrollments/d1?api-version=2021-10-01",
                    SymmetricEnrollment("d1").dump(),
                    {{"authorization", ServiceToken("reader")}});
  ExpectRefused(r, 401005, "EnrollmentWrite", audit);
}

TEST_F(ServiceApiTest, Accepts_TokenScopedToAPathPrefix) {
  std::string token = pki::CreateSasToken(Key(kOwnerKey), "localhost/enrollments", Now() + 60,
                                          "provisioningserviceowner");
  Response r = Send("PUT", "/enrollments/d1?api-version=2021-10-01",
                    SymmetricEnrollment("d1").dump(), {{"authorization", token}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = Send("GET", "/registrations/d1?api-version=2021-10-01", "", {{"authorization", token}});
  EXPECT_EQ(r.status, 401);
}

TEST_F(ServiceApiTest, Queries_InPagesWithContinuation) {
  for (int i = 0; i < 5; ++i) {
    std::string id = "dev-" + std::to_string(i);
    ASSERT_EQ(Service("PUT", "/enrollments/" + id, SymmetricEnrollment(id)).status, 200);
  }
  std::vector<std::string> seen;
  std::string continuation;
  int pages = 0;
  do {
    std::vector<Header> headers = {{"x-ms-max-item-count", "2"}};
    if (!continuation.empty()) headers.emplace_back("x-ms-continuation", continuation);
    Response r = Service("POST", "/enrollments/query", {{"query", "SELECT * FROM enrollments"}},
                         headers);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(HeaderOf(r, "x-ms-item-type"), "Enrollment");
    for (const auto& e : Json(r)) seen.push_back(e["registrationId"]);
    continuation = HeaderOf(r, "x-ms-continuation");
    ++pages;
  } while (!continuation.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, ::testing::ElementsAre("dev-0", "dev-1", "dev-2", "dev-3", "dev-4"));
}

TEST_F(ServiceApiTest, Rejects_BadPageSizeAndContinuation) {
  size_t audit = AuditCount();
  json query = {{"query", "SELECT * FROM enrollments"}};
  ExpectRefused(Service("POST", "/enrollments/query", query, {{"x-ms-max-item-count", "0"}}),
                400003, "x-ms-max-item-count", audit);
  ExpectRefused(Service("POST", "/enrollments/query", query, {{"x-ms-max-item-count", "ten"}}),
                400003, "x-ms-max-item-count", audit);
  ExpectRefused(Service("POST", "/enrollments/query", query, {{"x-ms-continuation", "zz"}}),
                400003, "continuation", audit);
}

TEST_F(ServiceApiTest, Rejects_UnsupportedQuery) {
  Response r = Service("POST", "/enrollments/query",
                       {{"query", "SELECT * FROM enrollments WHERE x = 1"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorCodeHeader(r), "400006");
}

TEST_F(ServiceApiTest, ReturnsAttestationMechanism) {
  json created = Json(Service("PUT", "/enrollments/d1", SymmetricEnrollment("d1")));
  Response r = Service("POST", "/enrollments/d1/attestationmechanism");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r), created["attestation"]);
}

TEST_F(ServiceApiTest, Bulk_CreatesAndReportsPerItemErrors) {
  json body = {{"mode", "create"},
               {"enrollments", {SymmetricEnrollment("b1"), SymmetricEnrollment("b2")}}};
  Response r = Service("POST", "/enrollments/", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["isSuccessful"], true);
  EXPECT_TRUE(registry_->GetEnrollment("b2"));

  r = Service("POST", "/enrollments/", body);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r)["isSuccessful"], false);
  EXPECT_EQ(Json(r)["errors"].size(), 2u);
  EXPECT_EQ(Json(r)["errors"][0]["errorCode"], 409001);

  r = Service("POST", "/enrollments/",
              {{"mode", "delete"}, {"enrollments", {SymmetricEnrollment("b1")}}});
  EXPECT_EQ(Json(r)["isSuccessful"], true);
  EXPECT_FALSE(registry_->GetEnrollment("b1"));
}

TEST_F(ServiceApiTest, Bulk_RejectsAMalformedItemAndWritesNothing) {
  size_t audit = AuditCount();
  json bad = SymmetricEnrollment("b2");
  bad["attestation"]["type"] = "nope";
  Response r = Service("POST", "/enrollments/",
                       {{"mode", "create"}, {"enrollments", {SymmetricEnrollment("b1"), bad}}});
  ExpectRefused(r, 400003, "enrollments[1].attestation.type", audit);
  EXPECT_FALSE(registry_->GetEnrollment("b1"));
}

TEST_F(ServiceApiTest, Groups_CrudAndRegistrations) {
  json group = {{"enrollmentGroupId", "grp1"},
                {"attestation", {{"type", "symmetricKey"},
                                 {"symmetricKey", {{"primaryKey", kGroupKey}}}}}};
  Response r = Service("PUT", "/enrollmentGroups/grp1", group);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["attestation"]["symmetricKey"]["primaryKey"], kGroupKey);

  std::string device_key = *pki::DeriveSymmetricKey(kGroupKey, "g-dev-1");
  ASSERT_EQ(Register("g-dev-1", DeviceToken(device_key, "g-dev-1")).status, 202);

  r = Service("POST", "/registrations/grp1/query");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Json(r).size(), 1u);
  EXPECT_EQ(Json(r)[0]["registrationId"], "g-dev-1");

  r = Service("GET", "/registrations/g-dev-1");
  ASSERT_EQ(r.status, 200);
  std::string etag = Json(r)["etag"];
  size_t audit = AuditCount();
  ExpectRefused(Service("DELETE", "/registrations/g-dev-1", nullptr, {{"if-match", "\"x\""}}),
                412001, "etag", audit);
  EXPECT_EQ(Service("DELETE", "/registrations/g-dev-1", nullptr, {{"if-match", etag}}).status, 204);
  EXPECT_EQ(Service("GET", "/registrations/g-dev-1").status, 404);

  r = Service("POST", "/enrollmentGroups/query", {{"query", "SELECT * FROM enrollmentGroups"}});
  EXPECT_EQ(HeaderOf(r, "x-ms-item-type"), "EnrollmentGroup");
  EXPECT_EQ(Json(r).size(), 1u);
  EXPECT_EQ(Service("DELETE", "/enrollmentGroups/grp1").status, 204);
}

TEST_F(ServiceApiTest, Enrollment_ShowsItsRegistrationState) {
  PutSymmetricEnrollment("sym-dev-1");
  ASSERT_EQ(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1")).status, 202);
  Response r = Service("GET", "/enrollments/sym-dev-1");
  EXPECT_EQ(Json(r)["registrationState"]["status"], "assigned");
}

TEST_F(ServiceApiTest, EveryWriteIsAudited) {
  size_t before = AuditCount();
  Service("PUT", "/enrollments/d1", SymmetricEnrollment("d1"));
  Service("DELETE", "/enrollments/d1");
  auto records = registry_->ListAudit(0, 1000);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), before + 2);
  EXPECT_EQ((*records)[before].actor, "service:provisioningserviceowner");
  EXPECT_EQ((*records)[before].object, "d1");
}

}  // namespace
}  // namespace devid::api

namespace devid::api {
namespace {

class ServiceRoutesTest : public testing::ApiFixture {};

TEST_F(ServiceRoutesTest, Accepts_LowercaseRouteWordsAsTheServiceSdkSendsThem) {
  nlohmann::json group = {{"enrollmentGroupId", "grp1"}, {"attestation", {{"type", "symmetricKey"}}}};
  ASSERT_EQ(Service("PUT", "/enrollmentgroups/grp1", group).status, 200);
  Response r = Service("POST", "/enrollmentgroups/grp1/attestationmechanism");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Service("POST", "/EnrollmentGroups/Query").status, 200);
}

}  // namespace
}  // namespace devid::api
