// The service API's server-signed commands: the envelope the SDK accepts, and every refusal
// (leaving the store and the audit log unchanged).

#include "api/command_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/error_codes.h"
#include "api/testing/api_fixture.h"
#include "ca/profile.h"
#include "devid/command.h"

namespace devid::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class CommandApiTest : public testing::ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    auto pkey = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    ASSERT_TRUE(pkey);
    auto key = keys::SoftwareKey(std::move(*pkey), "test:command-signer");
    ASSERT_TRUE(key);
    auto certificate = authority_->Issue(
        ca::kCommandSignerProfile,
        {.common_name = "devid command signer", .public_key = (*key)->public_key()});
    ASSERT_TRUE(certificate) << certificate.error().message();
    auto signer = ca::CreateCommandSigner(std::move(*certificate), std::move(*key));
    ASSERT_TRUE(signer) << signer.error().message();
    signer_ = std::move(*signer);
    commands_ = std::make_unique<CommandApi>(
        *registry_, *auth_,
        [this]() -> Result<std::shared_ptr<const ca::CommandSigner>> {
          if (signer_down_) return std::unexpected(Unavailable("the token is unplugged"));
          return signer_;
        },
        clock_);
    registry::Registration r;
    r.registration_id = "dev-1";
    r.device_id = "dev-1";
    r.status = "assigned";
    ASSERT_TRUE(registry_->SaveRegistration(r, {"test"}));
  }

  void TearDown() override {
    commands_.reset();
    ApiFixture::TearDown();
  }

  Response Post(const std::string& target, const std::string& body,
                const std::string& policy = "provisioningserviceowner") {
    Request request;
    request.method = "POST";
    request.target = target;
    request.body = body;
    request.headers = {{"authorization", ServiceToken(policy)}};
    auto parsed = ParseTarget(target);
    EXPECT_TRUE(parsed);
    EXPECT_TRUE(commands_->Matches(*parsed));
    return commands_->Handle(request, *parsed, "tracking-1");
  }

  // ExpectRefused checks the status and error code and that nothing was stored or audited.
  void ExpectRefused(const Response& r, int status, int code, const std::string& message_part) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(ErrorCodeHeader(r), std::to_string(code)) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message_part));
    EXPECT_EQ(AuditCount(), audit_before_);
    // Nothing was numbered: the next command is still number 1.
  }

  std::shared_ptr<const ca::CommandSigner> signer_;
  bool signer_down_ = false;
  std::unique_ptr<CommandApi> commands_;
  size_t audit_before_ = 0;
};

TEST_F(CommandApiTest, Signs_EnvelopeTheSdkAccepts) {
  Response r = Post("/devices/dev-1/commands?ttl=120", R"({"reboot":true})");
  ASSERT_EQ(r.status, 201) << r.body;
  json body = Json(r);
  EXPECT_EQ(body["deviceId"], "dev-1");
  EXPECT_EQ(body["sequence"], 1);
  EXPECT_EQ(body["signerThumbprint"], signer_->certificate().Sha256Thumbprint());
  EXPECT_EQ(body["expiresAt"], FormatUtc(clock_.Now() + std::chrono::seconds(120)));
  std::string state = (dir_ / "state.json").string();
  auto verifier =
      sdk::CommandVerifier::Create({.device_id = "dev-1",
                                    .signer_certificates_pem = signer_->certificate().ToPem(),
                                    .state_file = state},
                                   clock_);
  ASSERT_TRUE(verifier) << verifier.error().message();
  auto accepted = (*verifier)->Accept(body["envelope"].get<std::string>());
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->command_json, R"({"reboot":true})");
  EXPECT_EQ(accepted->expires_at, std::chrono::time_point_cast<std::chrono::seconds>(
                                      clock_.Now() + std::chrono::seconds(120)));
  EXPECT_EQ(Json(Post("/devices/dev-1/commands", "{}"))["sequence"], 2);
}

TEST_F(CommandApiTest, Rejects_PolicyWithoutServiceConfig) {
  audit_before_ = AuditCount();
  ExpectRefused(Post("/devices/dev-1/commands", "{}", "reader"), 401,
                error_code::kInsufficientRights, "ServiceConfig");
}

TEST_F(CommandApiTest, Rejects_UnregisteredDevice) {
  audit_before_ = AuditCount();
  ExpectRefused(Post("/devices/dev-2/commands", "{}"), 404, error_code::kRegistrationNotFound,
                "has not registered");
}

TEST_F(CommandApiTest, Rejects_BadCommandTtlAndSize) {
  audit_before_ = AuditCount();
  ExpectRefused(Post("/devices/dev-1/commands", "[1]"), 400, error_code::kInvalidCommand,
                "JSON object");
  ExpectRefused(Post("/devices/dev-1/commands", "{"), 400, error_code::kInvalidCommand,
                "JSON object");
  ExpectRefused(Post("/devices/dev-1/commands?ttl=0", "{}"), 400, error_code::kInvalidCommand,
                "ttl must be");
  ExpectRefused(Post("/devices/dev-1/commands?ttl=86401", "{}"), 400, error_code::kInvalidCommand,
                "ttl must be");
  ExpectRefused(Post("/devices/dev-1/commands?ttl=5s", "{}"), 400, error_code::kInvalidCommand,
                "ttl must be");
  ExpectRefused(Post("/devices/dev-1/commands", json{{"x", std::string(16 * 1024, 'a')}}.dump()),
                413, error_code::kCommandTooLarge, "at most 16384");
  EXPECT_EQ(Json(Post("/devices/dev-1/commands", "{}"))["sequence"], 1);
}

TEST_F(CommandApiTest, Rejects_WhenSignerUnavailable_WithoutNumbering) {
  audit_before_ = AuditCount();
  signer_down_ = true;
  Response r = Post("/devices/dev-1/commands", "{}");
  ExpectRefused(r, 503, error_code::kCommandSignerUnavailable, "tracking-1");
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("unplugged")));
  signer_down_ = false;
  EXPECT_EQ(Json(Post("/devices/dev-1/commands", "{}"))["sequence"], 1);
}

}  // namespace
}  // namespace devid::api
