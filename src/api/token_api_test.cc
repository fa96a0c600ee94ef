// The token authority: the token a permitted device gets, and every refusal (leaving the audit
// log unchanged).

#include "api/token_api.h"

#include <cjose/cjose.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "api/error_codes.h"
#include "api/testing/api_fixture.h"
#include "api/token_session_key.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "ca/testing/test_csr.h"
#include "ca/testing/test_token_signer.h"
#include "ca/token_signer.h"
#include "pki/crl_reason.h"
#include "pki/x5t.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// TokenApiTest runs every case through Handle (false) and through TryStart (true).
class TokenApiTest : public testing::ApiFixture, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    auto signer = ca::testing::MakeTestTokenSigner(*authority_);
    ASSERT_TRUE(signer) << signer.error().message();
    signer_ = std::move(*signer);
    issuer_ = std::make_unique<TokenIssuer>(
        [this]() -> Result<std::shared_ptr<const ca::JwsSigner>> {
          if (signer_down_) return std::unexpected(Unavailable("the token is unplugged"));
          return signer_;
        },
        clock_, random_, TokenIssuerOptions{.issuer = "https://localhost"});
    ca::TokenPolicy policy;
    policy.services = {"historian"};
    policy.rules.push_back(
        {.from_groups = {"sensors"}, .to_services = {"historian"}, .scopes = {"telemetry:write"}});
    policy.rules.push_back({.from_devices = {"gateway-1"},
                            .to_groups = {"sensors"},
                            .scopes = {"config:read", "config:write"}});
    policy.rules.push_back({.from_devices = {"sas-a", "sas-c"},
                            .to_devices = {"door-1", "sensor-2"},
                            .to_services = {"historian"},
                            .scopes = {"door:open"}});
    ASSERT_TRUE(ca::ValidateTokenPolicy(policy));
    tokens_ = std::make_unique<TokenApi>(*authority_, *registry_, clock_, *issuer_, policy,
                                         *verifier_, kScope, random_);
    tokens_->SetAnswerWithoutBlocking(GetParam());
    SaveRegistration("sensor-1", "sensors");
    SaveRegistration("sensor-2", "sensors");
    SaveRegistration("gateway-1", "");
    sensor_ = IssueDeviceCertificate("sensor-1");
    gateway_ = IssueDeviceCertificate("gateway-1");
    audit_before_ = AuditCount();
  }

  void TearDown() override {
    tokens_.reset();
    issuer_.reset();
    ApiFixture::TearDown();
  }

  void SaveRegistration(const std::string& id, const std::string& group) {
    registry::Registration r;
    r.registration_id = id;
    r.device_id = id;
    r.status = "assigned";
    r.enrollment_group_id = group;
    ASSERT_TRUE(registry_->SaveRegistration(r, {"test"}));
  }

  // IssueDeviceCertificate issues a device-client certificate and records it, as enrollment does.
  pki::Certificate IssueDeviceCertificate(const std::string& id) {
    auto key = ca::testing::TestKey("P-256");
    auto certificate =
        authority_->Issue(ca::kDeviceClientProfile, {.common_name = id, .public_key = key.get()});
    EXPECT_TRUE(certificate) << certificate.error().message();
    EXPECT_TRUE(registry_->RecordCertificate(
        ca::InventoryRecord(*certificate, registry::CertificateSource::kIssued, id,
                            std::string(ca::kDeviceClientProfile)),
        registry::kAuditCertificateIssue, {"test"}));
    return std::move(*certificate);
  }

  Response Post(const std::string& body, const pki::Certificate* client,
                const std::string& authorization = "") {
    Request request;
    request.method = "POST";
    request.target = "/tokens";
    request.body = body;
    if (!authorization.empty()) request.headers.emplace_back("authorization", authorization);
    if (client != nullptr) {
      // As net/ fills it: the DER and the chain the TLS layer parsed.
      request.peer_certificates_der.push_back(client->ToDer());
      auto chain = std::make_shared<std::vector<pki::Certificate>>();
      chain->push_back(client->Clone());
      request.peer_certificates = std::move(chain);
    }
    auto target = ParseTarget(request.target);
    EXPECT_TRUE(target);
    EXPECT_TRUE(tokens_->Matches(*target));
    return Answer(*tokens_, request, *target);
  }

  // Answer asks api through Handle, or through TryHandleNow when the test runs that way.
  static Response Answer(TokenApi& api, const Request& request, const Target& target) {
    if (!GetParam()) return api.Handle(request, target, "tracking-1");
    std::optional<Response> response = api.TryHandleNow(request, target);
    EXPECT_TRUE(response.has_value());
    if (!response) return Response{.status = 0};
    std::string id;
    for (const auto& [name, value] : response->headers) {
      if (name == "x-ms-request-id") id = value;
    }
    EXPECT_EQ(id.size(), 36u) << "a tracking ID of its own, in the header Router sets";
    return std::move(*response);
  }

  static std::string Ask(const std::string& audience, const std::string& scope) {
    return json{{"audience", audience}, {"scope", scope}}.dump();
  }

  // ExpectRefused checks the status, error code and message and that nothing was audited.
  void ExpectRefused(const Response& r, int status, int code, const std::string& message_part) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), std::to_string(code)) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message_part));
    EXPECT_EQ(AuditCount(), audit_before_);
  }

  static json Part(const std::string& token, int index) {
    size_t first = token.find('.');
    size_t second = token.find('.', first + 1);
    std::string_view part = index == 0
                                ? std::string_view(token).substr(0, first)
                                : std::string_view(token).substr(first + 1, second - first - 1);
    auto bytes = ossl::Base64UrlDecode(part);
    EXPECT_TRUE(bytes);
    return json::parse(std::string(bytes->begin(), bytes->end()));
  }

  std::shared_ptr<const ca::JwsSigner> signer_;
  bool signer_down_ = false;
  std::unique_ptr<TokenIssuer> issuer_;
  std::unique_ptr<TokenApi> tokens_;
  std::optional<pki::Certificate> sensor_;
  std::optional<pki::Certificate> gateway_;
  size_t audit_before_ = 0;
};

TEST_P(TokenApiTest, Issues_TokenBoundToTheClientCertificate) {
  Response r = Post(Ask("historian", "telemetry:write"), &*sensor_);
  ASSERT_EQ(r.status, 200) << r.body;
  json body = Json(r);
  EXPECT_EQ(body["token_type"], "PoP");
  EXPECT_EQ(body["expires_in"], 300);
  EXPECT_EQ(body["scope"], "telemetry:write");
  std::string token = body["access_token"];
  json header = Part(token, 0);
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["typ"], ca::kPeerTokenType);
  EXPECT_EQ(header["x5t#S256"], pki::X5tS256(signer_->certificate()));
  json claims = Part(token, 1);
  EXPECT_EQ(claims["iss"], "https://localhost");
  EXPECT_EQ(claims["sub"], "sensor-1");
  EXPECT_EQ(claims["aud"], "historian");
  EXPECT_EQ(claims["scope"], "telemetry:write");
  EXPECT_EQ(claims["iat"], Now());
  EXPECT_EQ(claims["exp"], Now() + 300);
  EXPECT_EQ(claims["jti"].get<std::string>().size(), 22u);  // 128 bits, base64url
  EXPECT_EQ(claims["cnf"]["x5t#S256"], pki::X5tS256(*sensor_));

  auto audit = registry_->ListAudit(0, 100000);
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), audit_before_ + 1);
  EXPECT_EQ(audit->back().action, kAuditTokenIssue);
  EXPECT_EQ(audit->back().object, "sensor-1");
  EXPECT_EQ(audit->back().actor, "device:sensor-1");
  EXPECT_THAT(audit->back().outcome, HasSubstr("aud=historian scope=telemetry:write jti=" +
                                               claims["jti"].get<std::string>()));
  EXPECT_THAT(audit->back().outcome, Not(HasSubstr(token.substr(token.rfind('.') + 1))));
}

TEST_P(TokenApiTest, Issues_DistinctJtiEachTime) {
  std::string a = Json(Post(Ask("historian", "telemetry:write"), &*sensor_))["access_token"];
  std::string b = Json(Post(Ask("historian", "telemetry:write"), &*sensor_))["access_token"];
  EXPECT_NE(Part(a, 1)["jti"], Part(b, 1)["jti"]);
}

TEST_P(TokenApiTest, Issues_EveryGrantedScopeForADeviceInAGroup) {
  Response r = Post(Ask("sensor-2", "config:read config:write config:read"), &*gateway_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["scope"], "config:read config:write");
  EXPECT_EQ(Part(Json(r)["access_token"], 1)["aud"], "sensor-2");
}

TEST_P(TokenApiTest, Rejects_PairThePolicyDoesNotAllow) {
  // sensors may reach the historian, not other devices.
  ExpectRefused(Post(Ask("sensor-2", "config:read"), &*sensor_), 403, error_code::kTokenDenied,
                "does not let sensor-1 obtain scope \\\"config:read\\\" for device sensor-2");
}

TEST_P(TokenApiTest, Rejects_ScopeNotGranted) {
  ExpectRefused(Post(Ask("historian", "telemetry:write telemetry:read"), &*sensor_), 403,
                error_code::kTokenDenied, "scope \\\"telemetry:read\\\" for service historian");
}

TEST_P(TokenApiTest, Rejects_UnknownAudience) {
  ExpectRefused(Post(Ask("nobody", "telemetry:write"), &*sensor_), 404,
                error_code::kTokenAudienceNotFound, "neither a known device");
}

TEST_P(TokenApiTest, Rejects_AudienceThatIsBothServiceAndDevice) {
  SaveRegistration("historian", "");
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("historian", "telemetry:write"), &*sensor_), 409,
                error_code::kTokenAudienceAmbiguous, "both a configured service");
}

TEST_P(TokenApiTest, Rejects_MalformedBodies) {
  ExpectRefused(Post("not json", &*sensor_), 400, error_code::kInvalidTokenRequest, "JSON object");
  ExpectRefused(Post(R"({"audience": "historian"})", &*sensor_), 400,
                error_code::kInvalidTokenRequest, "scope");
  ExpectRefused(Post(R"({"audience": 7, "scope": "x"})", &*sensor_), 400,
                error_code::kInvalidTokenRequest, "audience");
  ExpectRefused(Post(Ask("historian", "telemetry:write  x"), &*sensor_), 400,
                error_code::kInvalidTokenRequest, "separated by single spaces");
  ExpectRefused(Post(Ask("historian", "bad\\\"word"), &*sensor_), 400,
                error_code::kInvalidTokenRequest, "printable ASCII");
  ExpectRefused(Post(std::string(TokenApi::kMaxRequestBytes + 1, ' '), &*sensor_), 400,
                error_code::kInvalidTokenRequest, "over 4096 bytes");
}

// SasSetUp enrolls the symmetric devices: sas-a individually, door-1 through group "doors".
class SymmetricTokenTest : public TokenApiTest {
 protected:
  void SetUp() override {
    TokenApiTest::SetUp();
    PutSymmetricEnrollment("sas-a");
    PutSymmetricGroup("doors");
    SaveRegistration("door-1", "doors");
    audit_before_ = AuditCount();
  }

  // Open decrypts cnf.jwe as door-1 would, with the key-encryption key from its derived key.
  std::vector<uint8_t> Open(const std::string& jwe, std::string_view audience = "door-1") {
    auto device_key = pki::DeriveSymmetricKey(kGroupKey, audience);
    EXPECT_TRUE(device_key);
    std::array<uint8_t, 32> kek = PeerKek(Key(*device_key), audience);
    cjose_err err{};
    cjose_jwk_t* jwk = cjose_jwk_create_oct_spec(kek.data(), kek.size(), &err);
    cjose_jwe_t* parsed = cjose_jwe_import(jwe.data(), jwe.size(), &err);
    EXPECT_NE(parsed, nullptr);
    size_t length = 0;
    uint8_t* plain = parsed ? cjose_jwe_decrypt(parsed, jwk, &length, &err) : nullptr;
    std::vector<uint8_t> key(plain, plain + (plain ? length : 0));
    if (plain) cjose_get_dealloc()(plain);
    if (parsed) cjose_jwe_release(parsed);
    cjose_jwk_release(jwk);
    return key;
  }
};

TEST_P(SymmetricTokenTest, Issues_SessionKeyToTheCallerAndSealedForTheAudience) {
  Response r = Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.sensitive_body);
  json body = Json(r);
  auto session_key = ossl::Base64Decode(body["session_key"].get<std::string>());
  ASSERT_TRUE(session_key);
  EXPECT_EQ(session_key->size(), 32u);
  json claims = Part(body["access_token"], 1);
  EXPECT_EQ(claims["sub"], "sas-a");
  EXPECT_EQ(claims["aud"], "door-1");
  EXPECT_FALSE(claims["cnf"].contains("x5t#S256"));
  std::string jwe = claims["cnf"]["jwe"];
  json jwe_header = Part(jwe, 0);
  EXPECT_EQ(jwe_header["alg"], "dir");
  EXPECT_EQ(jwe_header["enc"], "A256GCM");
  EXPECT_EQ(Open(jwe), *session_key);
  EXPECT_NE(Open(jwe, "door-2"), *session_key);  // another device's key opens nothing

  auto audit = registry_->ListAudit(0, 100000);
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), audit_before_ + 1);
  EXPECT_EQ(audit->back().actor, "device:sas-a");
  EXPECT_THAT(audit->back().outcome, Not(HasSubstr(body["session_key"].get<std::string>())));
}

TEST_P(SymmetricTokenTest, Issues_AFreshSessionKeyEachTime) {
  Response a = Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a"));
  Response b = Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a"));
  EXPECT_NE(Json(a)["session_key"], Json(b)["session_key"]);
}

TEST_P(SymmetricTokenTest, Rejects_SasTokenSignedWithAnotherKey) {
  ExpectRefused(Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kGroupKey, "sas-a")), 401,
                error_code::kUnauthorized, "does not verify for registration sas-a");
}

TEST_P(SymmetricTokenTest, Rejects_SasTokenForAnotherScope) {
  ExpectRefused(
      Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a", 3600, "0ne99")),
      401, error_code::kUnauthorized, "");
}

TEST_P(SymmetricTokenTest, Rejects_DisabledEnrollment) {
  PutSymmetricEnrollment("sas-c", /*enabled=*/false);
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("door-1", "door:open"), nullptr, DeviceToken(kPrimary, "sas-c")), 401,
                error_code::kEnrollmentDisabled, "disabled");
}

TEST_P(SymmetricTokenTest, Rejects_AudienceWithoutSymmetricKey) {
  // A service holds no device key; sensor-2 registered through a group the store does not hold
  // as symmetric.
  ExpectRefused(Post(Ask("historian", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a")), 409,
                error_code::kTokenAudienceNotSymmetric, "not a symmetric-key device");
  ExpectRefused(Post(Ask("sensor-2", "door:open"), nullptr, DeviceToken(kPrimary, "sas-a")), 409,
                error_code::kTokenAudienceNotSymmetric, "not a symmetric-key device");
}

TEST_P(SymmetricTokenTest, Rejects_PairThePolicyDoesNotAllow) {
  ExpectRefused(Post(Ask("door-1", "door:close"), nullptr, DeviceToken(kPrimary, "sas-a")), 403,
                error_code::kTokenDenied, "door:close");
}

TEST_P(TokenApiTest, Rejects_NoCredential) {
  ExpectRefused(Post(Ask("historian", "telemetry:write"), nullptr), 401,
                error_code::kMissingAuthorization, "TLS client certificate, or the device's SAS");
}

TEST_P(TokenApiTest, Rejects_CertificateRevokedAfterItWasAccepted) {
  // The first request's path validation is remembered; revocation must still take effect at once.
  ASSERT_EQ(Post(Ask("historian", "telemetry:write"), &*sensor_).status, 200);
  registry::CertificateFilter filter;
  filter.serial = sensor_->SerialHex();
  ASSERT_TRUE(registry_->RevokeCertificates(filter, pki::kKeyCompromise, {"test"}));
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("historian", "telemetry:write"), &*sensor_), 401,
                error_code::kInsufficientRights, "revoked");
}

TEST_P(TokenApiTest, Rejects_CertificateThatExpiredAfterItWasAccepted) {
  ASSERT_EQ(Post(Ask("historian", "telemetry:write"), &*sensor_).status, 200);
  clock_.Set(sensor_->NotAfter());
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("historian", "telemetry:write"), &*sensor_), 401,
                error_code::kUnauthorized, "expired at");
}

TEST_P(TokenApiTest, Rejects_DeviceWhoseEnrollmentIsDisabled) {
  PutSymmetricEnrollment("gateway-1", /*enabled=*/false);
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("sensor-2", "config:read"), &*gateway_), 401,
                error_code::kEnrollmentDisabled, "the enrollment of gateway-1 is disabled");
}

TEST_P(TokenApiTest, Rejects_DeviceWhoseEnrollmentWasDisabledAfterATokenWasIssued) {
  // The first request's rows are kept while the store is unchanged; disabling changes it.
  ASSERT_EQ(Post(Ask("sensor-2", "config:read"), &*gateway_).status, 200);
  PutSymmetricEnrollment("gateway-1", /*enabled=*/false);
  audit_before_ = AuditCount();
  ExpectRefused(Post(Ask("sensor-2", "config:read"), &*gateway_), 401,
                error_code::kEnrollmentDisabled, "the enrollment of gateway-1 is disabled");
}

TEST_P(TokenApiTest, Issues_ToAnIndividuallyEnrolledAudienceNotYetRegistered) {
  PutSymmetricEnrollment("clock-1");
  tokens_ = std::make_unique<TokenApi>(
      *authority_, *registry_, clock_, *issuer_,
      ca::TokenPolicy{
          .rules = {{.from_devices = {"*"}, .to_devices = {"clock-1"}, .scopes = {"time"}}}},
      *verifier_, kScope, random_);
  tokens_->SetAnswerWithoutBlocking(GetParam());
  Response r = Post(Ask("clock-1", "time"), &*sensor_);
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST_P(TokenApiTest, Rejects_CertificateFromAnotherCa) {
  auto foreign_ca = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(foreign_ca);
  auto key = ca::testing::TestKey("P-256");
  auto foreign =
      (*foreign_ca)
          ->Issue(ca::kDeviceClientProfile, {.common_name = "sensor-1", .public_key = key.get()});
  ASSERT_TRUE(foreign);
  ExpectRefused(Post(Ask("historian", "telemetry:write"), &*foreign), 401,
                error_code::kUnauthorized, "was not issued by devid's CA");
}

TEST_P(TokenApiTest, Rejects_WhenTheSignerIsUnavailable) {
  signer_down_ = true;
  ExpectRefused(Post(Ask("historian", "telemetry:write"), &*sensor_), 503,
                error_code::kTokenSignerUnavailable, "see the server log for trackingId");
}

TEST_P(TokenApiTest, Rejects_OtherMethods) {
  Request request;
  request.method = "GET";
  request.target = "/tokens";
  auto target = ParseTarget(request.target);
  ASSERT_TRUE(target);
  EXPECT_EQ(Answer(*tokens_, request, *target).status, 405);
}

TEST_P(TokenApiTest, TryHandleNow_LeavesTheRequestToHandleUnlessAllowed) {
  tokens_->SetAnswerWithoutBlocking(false);
  Request request;
  request.method = "POST";
  request.target = "/tokens";
  auto target = ParseTarget(request.target);
  ASSERT_TRUE(target);
  EXPECT_FALSE(tokens_->TryHandleNow(request, *target).has_value());
}

TEST_P(TokenApiTest, TryHandleNow_LeavesTheRequestToHandleWhenEveryReaderIsLent) {
  tokens_->SetAnswerWithoutBlocking(true);
  Request request;
  request.method = "POST";
  request.target = "/tokens";
  request.body = Ask("historian", "telemetry:write");
  request.peer_certificates_der.push_back(sensor_->ToDer());
  auto target = ParseTarget(request.target);
  ASSERT_TRUE(target);
  // Handler threads holding all the store's read connections.
  const int kReaders = static_cast<int>(registry::SqliteRegistryOptions{}.max_readers);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> holding{0};
  std::vector<std::thread> holders;
  for (int i = 0; i < kReaders; ++i) {
    holders.emplace_back([&] {
      auto scope = registry_->ReadConsistently();
      EXPECT_NE(scope, nullptr);
      ++holding;
      released.wait();
    });
  }
  while (holding.load() < kReaders) std::this_thread::yield();
  EXPECT_FALSE(tokens_->TryHandleNow(request, *target).has_value())
      << "the I/O thread must not wait for a reader";
  release.set_value();
  for (auto& holder : holders) holder.join();
  auto answered = tokens_->TryHandleNow(request, *target);
  ASSERT_TRUE(answered.has_value());
  EXPECT_EQ(answered->status, 200) << answered->body;
}

INSTANTIATE_TEST_SUITE_P(HandleOrNow, TokenApiTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "TryHandleNow" : "Handle"; });
INSTANTIATE_TEST_SUITE_P(HandleOrNow, SymmetricTokenTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "TryHandleNow" : "Handle"; });

}  // namespace
}  // namespace devid::api
