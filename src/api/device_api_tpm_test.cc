// The DPS TPM challenge through the real request path (protocol notes §4.2). The device side is
// tpm/testing/software_tpm.h: it recovers the key from the blob as a TPM's ActivateCredential
// and Import would, with EK and SRK private keys made by OpenSSL in the test.

#include <gmock/gmock.h>

#include <memory>

#include "api/device_api.h"
#include "api/error_codes.h"
#include "api/testing/api_fixture.h"
#include "tpm/pcr_policy.h"
#include "tpm/testing/software_quote.h"
#include "tpm/testing/software_tpm.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using tpm::testing::SoftwareTpm;

class DeviceApiTpmTest : public testing::ApiFixture {
 protected:
  // Two TPMs for the whole suite: making RSA keys is the slow part.
  static void SetUpTestSuite() {
    tpm_ = new SoftwareTpm();
    other_tpm_ = new SoftwareTpm();
  }
  static void TearDownTestSuite() {
    delete tpm_;
    delete other_tpm_;
  }

  std::string RegId() const { return tpm_->RegistrationId(); }

  // PutTpmEnrollment enrolls the suite's TPM by its EK (and SRK when given) directly in the store.
  void PutTpmEnrollment(const std::string& reg_id, const std::string& ek,
                        const std::string& srk = "", bool enabled = true) {
    registry::Enrollment e;
    e.registration_id = reg_id;
    e.settings.attestation.type = registry::AttestationType::kTpm;
    e.settings.attestation.tpm = {ek, srk};
    e.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  }

  static std::string Body(const std::string& reg_id, const SoftwareTpm& tpm, bool with_srk = true) {
    json keys = {{"endorsementKey", tpm.EkBase64()}};
    if (with_srk) keys["storageRootKey"] = tpm.SrkBase64();
    return json{{"registrationId", reg_id}, {"tpm", keys}}.dump();
  }

  // TpmToken signs as the Node TPM client does: sr percent-encoded, skn last (§4.2 step 3).
  std::string TpmToken(const std::string& key_base64, const std::string& reg_id,
                       int64_t ttl = 3600) {
    std::string sr = PercentEncodeComponent(std::string(kScope) + "/registrations/" + reg_id);
    return pki::CreateSasToken(Key(key_base64), sr, Now() + ttl, "registration");
  }

  // Challenge runs step 1 and returns the blob, checking the 401 answer's shape.
  std::string Challenge(const std::string& reg_id, const SoftwareTpm& tpm, bool with_srk = true) {
    Response r = Register(reg_id, "", Body(reg_id, tpm, with_srk));
    EXPECT_EQ(r.status, 401) << r.body;
    bool json_type = false;
    for (const auto& [k, v] : r.headers) {
      if (k == "Content-Type") json_type = v.find("application/json") != std::string::npos;
    }
    EXPECT_TRUE(json_type);
    json body = Json(r);
    EXPECT_EQ(body["keyName"], "registration");
    EXPECT_TRUE(body["authenticationKey"].is_string()) << r.body;
    return body.value("authenticationKey", "");
  }

  // ActivatedKey recovers the HMAC key from a blob on the given TPM.
  static std::string ActivatedKey(const SoftwareTpm& tpm, const std::string& blob) {
    auto key = tpm.ActivateBase64(blob);
    EXPECT_TRUE(key) << key.error().message();
    return key.value_or("");
  }

  json Poll(const std::string& reg_id, const std::string& authorization,
            const std::string& operation_id, int status = 200) {
    Response r = Send("GET",
                      std::string("/") + kScope + "/registrations/" + reg_id + "/operations/" +
                          operation_id + "?api-version=2019-03-31",
                      "{}", {{"authorization", authorization}});
    EXPECT_EQ(r.status, status) << r.body;
    return Json(r);
  }

  // ExpectRefused checks a 4xx DPS error with code and message, and that no registration or
  // audit record appeared.
  void ExpectRefused(const Response& r, int error_code, std::string_view message,
                     size_t audit_before, const std::string& reg_id) {
    EXPECT_EQ(r.status, error_code / 1000) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), std::to_string(error_code));
    json body = Json(r);
    EXPECT_EQ(body["errorCode"], error_code);
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(message));
    EXPECT_EQ(AuditCount(), audit_before);
    EXPECT_FALSE(registry_->GetRegistration(reg_id));
  }

  bool HasChallenge(const std::string& reg_id) {
    return registry_->GetChallenge(reg_id).has_value();
  }

  static SoftwareTpm* tpm_;
  static SoftwareTpm* other_tpm_;
};

SoftwareTpm* DeviceApiTpmTest::tpm_ = nullptr;
SoftwareTpm* DeviceApiTpmTest::other_tpm_ = nullptr;

TEST_F(DeviceApiTpmTest, Accepts_ChallengeAnswer_AssigningThenAssignedWithAuthenticationKey) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  size_t audit_before = AuditCount();

  std::string blob = Challenge(id, *tpm_);
  EXPECT_EQ(AuditCount(), audit_before);  // a challenge is not a registration
  EXPECT_FALSE(registry_->GetRegistration(id));
  ASSERT_TRUE(HasChallenge(id));
  EXPECT_EQ(registry_->GetChallenge(id)->expires, clock_.Now() + std::chrono::minutes(5));

  std::string key = ActivatedKey(*tpm_, blob);
  ASSERT_FALSE(key.empty());
  EXPECT_EQ(registry_->GetChallenge(id)->secret, key);
  std::string token = TpmToken(key, id);
  Response r = Register(id, token, Body(id, *tpm_));
  ASSERT_EQ(r.status, 202) << r.body;
  json op = Json(r);
  EXPECT_EQ(op["status"], "assigning");

  auto stored = registry_->GetRegistration(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->attestation_type, registry::AttestationType::kTpm);
  EXPECT_EQ(stored->device_key, key);
  EXPECT_EQ(stored->tpm_storage_root_key, tpm_->SrkBase64());
  EXPECT_FALSE(HasChallenge(id));  // consumed with the registration
  EXPECT_EQ(AuditCount(), audit_before + 1);

  json done = Poll(id, token, op["operationId"]);
  EXPECT_EQ(done["status"], "assigned");
  const json& state = done["registrationState"];
  EXPECT_EQ(state["registrationId"], id);
  EXPECT_EQ(state["deviceId"], id);
  ASSERT_TRUE(state["tpm"]["authenticationKey"].is_string()) << done.dump();
  std::string final_blob = state["tpm"]["authenticationKey"];
  EXPECT_NE(final_blob, blob);                      // freshly wrapped ...
  EXPECT_EQ(ActivatedKey(*tpm_, final_blob), key);  // ... around the same key

  // The registration status lookup answers the bare state, also with the key.
  Response status =
      Send("POST", std::string("/") + kScope + "/registrations/" + id + "?api-version=2021-10-01",
           json{{"registrationId", id}}.dump(), {{"authorization", token}});
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(ActivatedKey(*tpm_, Json(status)["tpm"]["authenticationKey"]), key);
}

TEST_F(DeviceApiTpmTest, Accepts_EnrollmentMadeThroughServiceApiWithSrk) {
  const std::string id = RegId();
  json enrollment = {
      {"registrationId", id},
      {"attestation",
       {{"type", "tpm"},
        {"tpm", {{"endorsementKey", tpm_->EkBase64()}, {"storageRootKey", tpm_->SrkBase64()}}}}}};
  Response put = Service("PUT", "/enrollments/" + id, enrollment);
  ASSERT_EQ(put.status, 200) << put.body;
  // The device may leave the SRK out when the enrollment holds it.
  std::string key = ActivatedKey(*tpm_, Challenge(id, *tpm_, /*with_srk=*/false));
  Response r = Register(id, TpmToken(key, id), Body(id, *tpm_, /*with_srk=*/false));
  EXPECT_EQ(r.status, 202) << r.body;
}

TEST_F(DeviceApiTpmTest, Rejects_EnrollmentWhoseKeysAreNotRsaPublicAreas) {
  const std::string id = RegId();
  for (const auto& [tpm, field] : std::vector<std::pair<json, std::string>>{
           {{{"endorsementKey", "ZWs="}}, "attestation.tpm.endorsementKey"},
           {{{"endorsementKey", tpm_->EkBase64()}, {"storageRootKey", "c3Jr"}},
            "attestation.tpm.storageRootKey"},
       }) {
    Response r =
        Service("PUT", "/enrollments/" + id,
                {{"registrationId", id}, {"attestation", {{"type", "tpm"}, {"tpm", tpm}}}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(Json(r)["message"].get<std::string>(), HasSubstr(field));
    EXPECT_THAT(Json(r)["message"].get<std::string>(), HasSubstr("TPM2B_PUBLIC"));
  }
  EXPECT_FALSE(registry_->GetEnrollment(id));
}

TEST_F(DeviceApiTpmTest, Rejects_ReplayedRegisterAfterSuccess) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string token = TpmToken(ActivatedKey(*tpm_, Challenge(id, *tpm_)), id);
  ASSERT_EQ(Register(id, token, Body(id, *tpm_)).status, 202);
  auto before = registry_->GetRegistration(id);
  size_t audit_before = AuditCount();

  Response replay = Register(id, token, Body(id, *tpm_));
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_THAT(Json(replay)["message"].get<std::string>(), HasSubstr("no pending TPM challenge"));
  EXPECT_EQ(AuditCount(), audit_before);
  EXPECT_EQ(registry_->GetRegistration(id)->etag, before->etag);
}

TEST_F(DeviceApiTpmTest, Rejects_ExpiredChallenge) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string key = ActivatedKey(*tpm_, Challenge(id, *tpm_));
  size_t audit_before = AuditCount();
  clock_.Advance(std::chrono::minutes(5));
  Response r = Register(id, TpmToken(key, id), Body(id, *tpm_));
  ExpectRefused(r, error_code::kUnauthorized, "no pending TPM challenge", audit_before, id);
}

TEST_F(DeviceApiTpmTest, Rejects_UnenrolledEkWithOneMessage) {
  const std::string id = RegId();
  size_t audit_before = AuditCount();
  // No enrollment, a symmetric-key enrollment, and a TPM enrollment of another EK all answer
  // alike and store nothing.
  Response none = Register(id, "", Body(id, *tpm_));
  ExpectRefused(none, error_code::kUnauthorized, "no TPM enrollment for registration " + id,
                audit_before, id);
  PutSymmetricEnrollment(id);
  audit_before = AuditCount();
  Response symmetric = Register(id, "", Body(id, *tpm_));
  ExpectRefused(symmetric, error_code::kUnauthorized, "", audit_before, id);
  EXPECT_EQ(Json(symmetric)["message"], Json(none)["message"]);
  PutTpmEnrollment(id, other_tpm_->EkBase64());
  audit_before = AuditCount();
  Response other = Register(id, "", Body(id, *tpm_));
  ExpectRefused(other, error_code::kUnauthorized, "", audit_before, id);
  EXPECT_EQ(Json(other)["message"], Json(none)["message"]);
  EXPECT_FALSE(HasChallenge(id));
}

TEST_F(DeviceApiTpmTest, Rejects_BlobOnAnotherTpmAndSasWithWrongKey) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string blob = Challenge(id, *tpm_);
  // An impostor holding only the EK's public part gets the blob but cannot open it.
  EXPECT_FALSE(other_tpm_->ActivateBase64(blob));
  size_t audit_before = AuditCount();
  Response wrong = Register(id, TpmToken(kPrimary, id), Body(id, *tpm_));
  ExpectRefused(wrong, error_code::kUnauthorized, "does not verify with the TPM challenge key",
                audit_before, id);
  EXPECT_TRUE(HasChallenge(id));  // a failed answer does not use it up
  // The device's own answer still works.
  Response right = Register(id, TpmToken(ActivatedKey(*tpm_, blob), id), Body(id, *tpm_));
  EXPECT_EQ(right.status, 202) << right.body;
}

TEST_F(DeviceApiTpmTest, Rejects_KeyOfAReplacedChallenge) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string first = ActivatedKey(*tpm_, Challenge(id, *tpm_));
  std::string second = ActivatedKey(*tpm_, Challenge(id, *tpm_));
  EXPECT_NE(first, second);
  size_t audit_before = AuditCount();
  Response stale = Register(id, TpmToken(first, id), Body(id, *tpm_));
  ExpectRefused(stale, error_code::kUnauthorized, "TPM challenge key", audit_before, id);
  EXPECT_EQ(Register(id, TpmToken(second, id), Body(id, *tpm_)).status, 202);
}

TEST_F(DeviceApiTpmTest, Rejects_AnswerWithExpiredTokenOrOtherEk) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string key = ActivatedKey(*tpm_, Challenge(id, *tpm_));
  size_t audit_before = AuditCount();
  Response expired = Register(id, TpmToken(key, id, -1), Body(id, *tpm_));
  ExpectRefused(expired, error_code::kUnauthorized, "expired", audit_before, id);
  Response other_ek = Register(id, TpmToken(key, id), Body(id, *other_tpm_));
  ExpectRefused(other_ek, error_code::kUnauthorized, "no TPM enrollment", audit_before, id);
  EXPECT_TRUE(HasChallenge(id));
}

TEST_F(DeviceApiTpmTest, Rejects_DisabledEnrollmentAfterProof) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64(), "", /*enabled=*/false);
  std::string key = ActivatedKey(*tpm_, Challenge(id, *tpm_));
  size_t audit_before = AuditCount();
  Response r = Register(id, TpmToken(key, id), Body(id, *tpm_));
  ExpectRefused(r, error_code::kEnrollmentDisabled, "disabled", audit_before, id);
}

TEST_F(DeviceApiTpmTest, Rejects_MalformedOrMissingKeys) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  size_t audit_before = AuditCount();
  struct Case {
    std::string name;
    json tpm;
    int code;
    std::string message;
  };
  std::string truncated = tpm_->EkBase64().substr(0, 40);
  for (const Case& c : std::vector<Case>{
           {"not an object", "x", error_code::kInvalidField, "tpm must be an object"},
           {"no EK", json::object(), error_code::kInvalidField, "tpm.endorsementKey is required"},
           {"EK not base64",
            {{"endorsementKey", "%%%"}},
            error_code::kInvalidField,
            "tpm.endorsementKey"},
           {"EK truncated",
            {{"endorsementKey", truncated}},
            error_code::kInvalidField,
            "TPM2B_PUBLIC"},
           {"no SRK anywhere",
            {{"endorsementKey", tpm_->EkBase64()}},
            error_code::kInvalidField,
            "tpm.storageRootKey is required"},
           {"SRK not a string",
            {{"endorsementKey", tpm_->EkBase64()}, {"storageRootKey", 5}},
            error_code::kInvalidField,
            "tpm.storageRootKey must be"},
       }) {
    Response r = Register(id, "", json{{"registrationId", id}, {"tpm", c.tpm}}.dump());
    ExpectRefused(r, c.code, c.message, audit_before, id);
    EXPECT_FALSE(HasChallenge(id)) << c.name;
  }
}

TEST_F(DeviceApiTpmTest, Rejects_SrkOtherThanEnrolled) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64(), other_tpm_->SrkBase64());
  size_t audit_before = AuditCount();
  Response r = Register(id, "", Body(id, *tpm_));
  ExpectRefused(r, error_code::kUnauthorized, "storage root key is not the one enrolled",
                audit_before, id);
  EXPECT_FALSE(HasChallenge(id));
}

TEST_F(DeviceApiTpmTest, Rejects_PollWithWrongKeyOrChallengeKeyOfAnother) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  std::string token = TpmToken(ActivatedKey(*tpm_, Challenge(id, *tpm_)), id);
  Response r = Register(id, token, Body(id, *tpm_));
  ASSERT_EQ(r.status, 202);
  std::string operation = Json(r)["operationId"];
  json bad = Poll(id, TpmToken(kPrimary, id), operation, 401);
  EXPECT_THAT(bad["message"].get<std::string>(), HasSubstr("does not verify"));
  // A symmetric-key token for the same ID is checked against the TPM registration's key too.
  json symmetric = Poll(id, DeviceToken(kPrimary, id), operation, 401);
  EXPECT_EQ(symmetric["errorCode"], error_code::kUnauthorized);
}

// Measured boot (devid extension): the challenge carries a nonce and an AK credential; the answer
// carries the activated credential and a quote, checked before anything is stored.
class DeviceApiMeasuredBootTest : public DeviceApiTpmTest {
 protected:
  static std::vector<tpm::Bytes> Pcrs() { return {tpm::Bytes(32, 0xa0), tpm::Bytes(32, 0xa7)}; }

  void PutPolicyEnrollment(const std::string& reg_id) {
    registry::Enrollment e;
    e.registration_id = reg_id;
    e.settings.attestation.type = registry::AttestationType::kTpm;
    e.settings.attestation.tpm.endorsement_key = tpm_->EkBase64();
    e.settings.attestation.tpm.pcr_policy = tpm::FormatPcrPolicy(
        {tpm::Alg::kSha256, {0, 7}, {*tpm::PcrCompositeDigest(tpm::Alg::kSha256, Pcrs())}});
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  }

  json Keys() const {
    return {{"endorsementKey", tpm_->EkBase64()},
            {"storageRootKey", tpm_->SrkBase64()},
            {"attestationKey", ak_.Base64()}};
  }

  // Answer activates the blob and the AK credential and quotes pcrs with the challenge's nonce.
  Response Answer(const std::string& id, const json& challenge, std::vector<tpm::Bytes> pcrs) {
    std::string key = ActivatedKey(*tpm_, challenge["authenticationKey"]);
    auto credential = ossl::Base64Decode(
        challenge["attestationChallenge"]["attestationKeyCredential"].get<std::string>());
    tpm::Reader reader(*credential);
    auto id_object = reader.B2("id");
    auto secret = reader.B2("secret");
    auto activated = tpm_->ActivateCredential(*ak_.ak().Name(), *id_object, *secret);
    EXPECT_TRUE(activated) << activated.error().message();
    auto nonce = ossl::Base64Decode(challenge["attestationChallenge"]["nonce"].get<std::string>());
    tpm::testing::QuoteBytes q =
        ak_.Quote(*nonce, tpm::PcrSelection{tpm::Alg::kSha256, {0, 7}}, pcrs);
    json keys = Keys();
    keys["attestationKeyCredential"] = ossl::Base64Encode(*activated);
    keys["quote"] = ossl::Base64Encode(q.attest);
    keys["quoteSignature"] = ossl::Base64Encode(q.signature);
    return Register(id, TpmToken(key, id), json{{"registrationId", id}, {"tpm", keys}}.dump());
  }

  json ChallengeWithAk(const std::string& id) {
    Response r = Register(id, "", json{{"registrationId", id}, {"tpm", Keys()}}.dump());
    EXPECT_EQ(r.status, 401) << r.body;
    return Json(r);
  }

  tpm::testing::SoftwareAttestationKey ak_;
};

TEST_F(DeviceApiMeasuredBootTest, Accepts_QuoteOfAllowedPcrs) {
  const std::string id = RegId();
  PutPolicyEnrollment(id);
  json challenge = ChallengeWithAk(id);
  ASSERT_TRUE(challenge["attestationChallenge"]["nonce"].is_string()) << challenge.dump();
  Response r = Answer(id, challenge, Pcrs());
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(registry_->GetRegistration(id));
}

TEST_F(DeviceApiMeasuredBootTest, Rejects_PcrMismatch_StoringNothing) {
  const std::string id = RegId();
  PutPolicyEnrollment(id);
  json challenge = ChallengeWithAk(id);
  size_t audit_before = AuditCount();
  std::vector<tpm::Bytes> booted_other = Pcrs();
  booted_other[1][0] ^= 0xff;
  ExpectRefused(Answer(id, challenge, booted_other), error_code::kUnauthorized,
                "measured boot: PCR digest mismatch", audit_before, id);
  EXPECT_TRUE(HasChallenge(id));  // unconsumed: a refused answer changes nothing
}

TEST_F(DeviceApiMeasuredBootTest, Rejects_ChallengeWithoutAttestationKey) {
  const std::string id = RegId();
  PutPolicyEnrollment(id);
  size_t audit_before = AuditCount();
  ExpectRefused(Register(id, "", Body(id, *tpm_)), error_code::kInvalidField,
                "tpm.attestationKey is required", audit_before, id);
  EXPECT_FALSE(HasChallenge(id));
}

TEST_F(DeviceApiTpmTest, Omits_AttestationChallengeWithoutPolicy) {
  const std::string id = RegId();
  PutTpmEnrollment(id, tpm_->EkBase64());
  Response r = Register(id, "", Body(id, *tpm_));
  ASSERT_EQ(r.status, 401);
  EXPECT_FALSE(Json(r).contains("attestationChallenge"));  // the Azure SDK flow, unchanged
}

TEST_F(DeviceApiTpmTest, Rejects_MissingEkCertificateWhenEnrollmentRequiresIt) {
  const std::string id = RegId();
  registry::Enrollment e;
  e.registration_id = id;
  e.settings.attestation.type = registry::AttestationType::kTpm;
  e.settings.attestation.tpm.endorsement_key = tpm_->EkBase64();
  e.settings.attestation.tpm.require_ek_certificate = true;
  ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
  size_t audit_before = AuditCount();
  ExpectRefused(Register(id, "", Body(id, *tpm_)), error_code::kUnauthorized,
                "an EK certificate is required", audit_before, id);
  EXPECT_FALSE(HasChallenge(id));
}

}  // namespace
}  // namespace devid::api
