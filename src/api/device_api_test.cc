#include "api/device_api.h"

#include <gmock/gmock.h>

#include "api/testing/api_fixture.h"

namespace devid::api {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class DeviceApiTest : public testing::ApiFixture {
 protected:
  // ExpectRejected checks the status, the DPS error code (body and header), a message substring,
  // and that the store did not change.
  void ExpectRejected(const Response& r, int error_code, std::string_view message,
                      size_t audit_before, std::string_view reg_id) {
    EXPECT_EQ(r.status, error_code / 1000) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), std::to_string(error_code));
    json body = Json(r);
    EXPECT_EQ(body["errorCode"], error_code);
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(message));
    EXPECT_FALSE(body["trackingId"].get<std::string>().empty());
    EXPECT_EQ(AuditCount(), audit_before);
    EXPECT_FALSE(registry_->GetRegistration(reg_id));
  }

  json PollOperation(std::string_view reg_id, const std::string& authorization,
                     const std::string& operation_id) {
    Response r = Send("GET",
                      std::string("/") + kScope + "/registrations/" + std::string(reg_id) +
                          "/operations/" + operation_id + "?api-version=2019-03-31",
                      "{}", {{"authorization", authorization}});
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r);
  }
};

TEST_F(DeviceApiTest, Accepts_PrimaryKey_AssigningThenAssigned) {
  PutSymmetricEnrollment("sym-dev-1");
  std::string token = DeviceToken(kPrimary, "sym-dev-1");
  Response r = Register("sym-dev-1", token);
  ASSERT_EQ(r.status, 202) << r.body;
  json op = Json(r);
  EXPECT_EQ(op["status"], "assigning");
  ASSERT_TRUE(op["operationId"].is_string());
  bool has_retry_after = false, json_type = false;
  for (const auto& [k, v] : r.headers) {
    if (k == "Retry-After") has_retry_after = v == "1";
    if (k == "Content-Type") json_type = v.find("application/json") != std::string::npos;
  }
  EXPECT_TRUE(has_retry_after);
  EXPECT_TRUE(json_type);

  json done = PollOperation("sym-dev-1", token, op["operationId"]);
  EXPECT_EQ(done["status"], "assigned");
  EXPECT_EQ(done["operationId"], op["operationId"]);
  const json& state = done["registrationState"];
  EXPECT_EQ(state["registrationId"], "sym-dev-1");
  EXPECT_EQ(state["deviceId"], "sym-dev-1");
  EXPECT_EQ(state["status"], "assigned");
  EXPECT_EQ(state["substatus"], "initialAssignment");
  EXPECT_THAT(state["assignedHub"].get<std::string>(), ::testing::AnyOf("hub-a", "hub-b"));
  EXPECT_FALSE(state["etag"].get<std::string>().empty());
  EXPECT_TRUE(state.contains("createdDateTimeUtc"));
  EXPECT_FALSE(state.contains("symmetricKey"));
}

TEST_F(DeviceApiTest, Accepts_SecondaryKey) {
  PutSymmetricEnrollment("sym-dev-2");
  EXPECT_EQ(Register("sym-dev-2", DeviceToken(kSecondary, "sym-dev-2")).status, 202);
}

TEST_F(DeviceApiTest, Accepts_EncodedResourceAsTheTpmAndCSdksSendIt) {
  PutSymmetricEnrollment("sym-dev-3");
  std::string sr = PercentEncodeComponent(std::string(kScope) + "/registrations/sym-dev-3");
  std::string token = pki::CreateSasToken(Key(kPrimary), sr, Now() + 60, "registration");
  EXPECT_EQ(Register("sym-dev-3", token).status, 202);
}

TEST_F(DeviceApiTest, Accepts_AnyWellFormedApiVersion) {
  PutSymmetricEnrollment("sym-dev-4");
  for (const char* version : {"2019-03-31", "2021-06-01", "2021-10-01", "2025-07-01-preview",
                              "2030-01-01"}) {
    EXPECT_EQ(Register("sym-dev-4", DeviceToken(kPrimary, "sym-dev-4"), "", version).status, 202)
        << version;
  }
}

TEST_F(DeviceApiTest, Accepts_GroupDerivedKey_AndNamesTheGroup) {
  PutSymmetricGroup("grp1");
  std::string device_key = *pki::DeriveSymmetricKey(kGroupKey, "sym-grp-dev-7");
  std::string token = DeviceToken(device_key, "sym-grp-dev-7");
  Response r = Register("sym-grp-dev-7", token,
                        R"({"registrationId":"sym-grp-dev-7","payload":{"modelId":"dtmi:x;1"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  json done = PollOperation("sym-grp-dev-7", token, Json(r)["operationId"]);
  EXPECT_EQ(done["registrationState"]["symmetricKey"]["enrollmentGroupId"], "grp1");
  EXPECT_EQ(done["registrationState"]["payload"]["modelId"], "dtmi:x;1");
  auto stored = registry_->GetRegistration("sym-grp-dev-7");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->enrollment_group_id, "grp1");
}

TEST_F(DeviceApiTest, Accepts_GroupFoundThroughItsRegistrationIdPrefix) {
  // Many catch-all-free groups: only the one whose prefix matches is a candidate.
  for (int i = 0; i < 50; ++i) {
    PutSymmetricGroup("plant-" + std::to_string(i), true, "plant" + std::to_string(i) + "-",
                      ossl::Base64Encode(random_.Bytes(32)));
  }
  PutSymmetricGroup("plant-target", true, "plant7-line2-");
  std::string device_key = *pki::DeriveSymmetricKey(kGroupKey, "plant7-line2-dev9");
  Response r = Register("plant7-line2-dev9", DeviceToken(device_key, "plant7-line2-dev9"));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(registry_->GetRegistration("plant7-line2-dev9")->enrollment_group_id, "plant-target");
}

TEST_F(DeviceApiTest, Reregistration_IsIdempotent) {
  PutSymmetricEnrollment("sym-dev-5");
  std::string token = DeviceToken(kPrimary, "sym-dev-5");
  ASSERT_EQ(Register("sym-dev-5", token).status, 202);
  auto first = registry_->GetRegistration("sym-dev-5");
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_EQ(Register("sym-dev-5", token).status, 202);
  auto second = registry_->GetRegistration("sym-dev-5");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(second->assigned_hub, first->assigned_hub);
  EXPECT_EQ(second->device_id, first->device_id);
  EXPECT_EQ(second->substatus, "initialAssignment");
  EXPECT_EQ(second->created, first->created);
  EXPECT_NE(second->operation_id, first->operation_id);
}

TEST_F(DeviceApiTest, StaticAllocation_UsesTheNamedHub) {
  registry::Enrollment e;
  e.registration_id = "static-dev";
  e.device_id = "custom-device-id";
  e.settings.attestation.type = registry::AttestationType::kSymmetricKey;
  e.settings.attestation.symmetric_key = {kPrimary, kSecondary};
  e.settings.allocation_policy = "static";
  e.settings.iot_hub_host_name = "hub-static";
  ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  ASSERT_EQ(Register("static-dev", DeviceToken(kPrimary, "static-dev")).status, 202);
  auto stored = registry_->GetRegistration("static-dev");
  EXPECT_EQ(stored->assigned_hub, "hub-static");
  EXPECT_EQ(stored->device_id, "custom-device-id");
}

TEST_F(DeviceApiTest, RegistrationStatus_ReturnsTheBareState) {
  PutSymmetricEnrollment("sym-dev-6");
  std::string token = DeviceToken(kPrimary, "sym-dev-6");
  ASSERT_EQ(Register("sym-dev-6", token).status, 202);
  Response r = Send("POST", std::string("/") + kScope + "/registrations/sym-dev-6?api-version=2021-10-01",
                    R"({"registrationId":"sym-dev-6"})", {{"authorization", token}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["registrationId"], "sym-dev-6");
  EXPECT_EQ(Json(r)["status"], "assigned");
}

TEST_F(DeviceApiTest, Rejects_WrongKey) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kGroupKey, "sym-dev-1")), 401002,
                 "signature does not verify", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_ExpiredToken) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1", -1)), 401002, "expired",
                 audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_TokenForAnotherRegistrationId) {
  PutSymmetricEnrollment("sym-dev-1");
  PutSymmetricEnrollment("sym-dev-2");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-2")), 401002,
                 "sr does not name", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_TokenForAnotherScope) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1", 3600, "0ne0000FFFF")),
                 401002, "sr does not name", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_UnknownScopeInThePath) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  std::string token = DeviceToken(kPrimary, "sym-dev-1", 3600, "0ne0000FFFF");
  Response r = Send("PUT", "/0ne0000FFFF/registrations/sym-dev-1/register?api-version=2019-03-31",
                    R"({"registrationId":"sym-dev-1"})", {{"authorization", token}});
  ExpectRejected(r, 401002, "not served here", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_WrongKeyName) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(
      Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1", 3600, kScope, "provisioningserviceowner")),
      401002, "skn", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_MalformedToken) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", "SharedAccessSignature sr=x&sig=%%%&se=1"), 401002,
                 "SAS token", audit, "sym-dev-1");
  ExpectRejected(Register("sym-dev-1", "Bearer abc"), 401002, "SharedAccessSignature", audit,
                 "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_MissingAuthorization) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", ""), 401002, "no Authorization", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_DisabledEnrollment) {
  PutSymmetricEnrollment("sym-dev-1", /*enabled=*/false);
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1")), 401004, "disabled",
                 audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_DisabledGroup) {
  PutSymmetricGroup("grp-off", /*enabled=*/false);
  size_t audit = AuditCount();
  std::string device_key = *pki::DeriveSymmetricKey(kGroupKey, "dev-in-off-group");
  ExpectRejected(Register("dev-in-off-group", DeviceToken(device_key, "dev-in-off-group")), 401004,
                 "enrollment group grp-off is disabled", audit, "dev-in-off-group");
}

TEST_F(DeviceApiTest, Rejects_UnknownRegistrationIdWithTheSameMessageAsAWrongKey) {
  size_t audit = AuditCount();
  ExpectRejected(Register("nobody", DeviceToken(kPrimary, "nobody")), 401002,
                 "signature does not verify for registration nobody", audit, "nobody");
}

TEST_F(DeviceApiTest, Rejects_GroupKeyUsedDirectlyInsteadOfDerived) {
  PutSymmetricGroup("grp1");
  size_t audit = AuditCount();
  ExpectRejected(Register("dev-x", DeviceToken(kGroupKey, "dev-x")), 401002,
                 "signature does not verify", audit, "dev-x");
}

TEST_F(DeviceApiTest, Rejects_MalformedJson) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1"), "{\"registrationId\":"),
                 400002, "JSON", audit, "sym-dev-1");
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1"), "[1,2]"), 400002,
                 "JSON object", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_BodyRegistrationIdThatDiffersFromThePath) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1"),
                          R"({"registrationId":"someone-else"})"),
                 400005, "does not match", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_BadApiVersionFormat) {
  PutSymmetricEnrollment("sym-dev-1");
  size_t audit = AuditCount();
  ExpectRejected(Register("sym-dev-1", DeviceToken(kPrimary, "sym-dev-1"), "", "v1"), 400004,
                 "YYYY-MM-DD", audit, "sym-dev-1");
  ExpectRejected(Send("PUT", std::string("/") + kScope + "/registrations/sym-dev-1/register", "{}",
                      {{"authorization", DeviceToken(kPrimary, "sym-dev-1")}}),
                 400004, "api-version", audit, "sym-dev-1");
}

TEST_F(DeviceApiTest, Rejects_InvalidRegistrationId) {
  size_t audit = AuditCount();
  Response r = Send("PUT", std::string("/") + kScope +
                               "/registrations/bad%20id/register?api-version=2019-03-31",
                    "{}", {});
  ExpectRejected(r, 400003, "registrationId", audit, "bad id");
}

TEST_F(DeviceApiTest, Rejects_OperationOfAnotherRegistration) {
  PutSymmetricEnrollment("sym-dev-1");
  std::string token = DeviceToken(kPrimary, "sym-dev-1");
  ASSERT_EQ(Register("sym-dev-1", token).status, 202);
  Response r = Send("GET", std::string("/") + kScope +
                               "/registrations/sym-dev-1/operations/5.0000.nope?api-version=2019-03-31",
                    "{}", {{"authorization", token}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCodeHeader(r), "404003");
}

TEST_F(DeviceApiTest, Rejects_OperationPollWithoutValidToken) {
  PutSymmetricEnrollment("sym-dev-1");
  std::string token = DeviceToken(kPrimary, "sym-dev-1");
  Response reg = Register("sym-dev-1", token);
  ASSERT_EQ(reg.status, 202);
  std::string op = Json(reg)["operationId"];
  Response r = Send("GET", std::string("/") + kScope + "/registrations/sym-dev-1/operations/" +
                               op + "?api-version=2019-03-31",
                    "{}", {{"authorization", DeviceToken(kGroupKey, "sym-dev-1")}});
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("registrationState")));
}

TEST_F(DeviceApiTest, Rejects_WrongMethod) {
  Response r = Send("DELETE", std::string("/") + kScope +
                                  "/registrations/sym-dev-1/register?api-version=2019-03-31",
                    "", {});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(ErrorCodeHeader(r), "405001");
}

}  // namespace
}  // namespace devid::api
