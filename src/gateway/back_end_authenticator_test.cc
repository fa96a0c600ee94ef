#include "gateway/back_end_authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::gateway {
namespace {

using ::testing::HasSubstr;

constexpr char kHub[] = "hub-a.example.net";
constexpr char kOwnerKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr char kReaderKey[] = "QHNXCHA0Z8gY8OrUtr6oAXJs55pPllbo1jyAqYJDIiY=";
constexpr char kClientId[] = "$service-backend-1";

class BackEndAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("devid-backend-" + random_.Hex(8));
    std::filesystem::create_directories(dir_);
    auto opened = registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    registry_ = std::move(*opened);
    SetPolicies({{.name = "owner",
                  .primary_key = "",
                  .secondary_key = kOwnerKey,
                  .rights = api::AllServiceRights()},
                 {.name = "reader",
                  .primary_key = kReaderKey,
                  .rights = {api::ServiceRight::kEnrollmentRead,
                             api::ServiceRight::kRegistrationStatusRead}}});
  }
  void TearDown() override {
    registry_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void SetPolicies(const std::vector<api::AccessPolicy>& policies) {
    ASSERT_TRUE(registry_->SetSetting("service.policies", api::PoliciesToJson(policies), actor_));
  }

  // Token is a service SAS token as the service API takes it: sr the host (here the hub), skn the
  // policy.
  std::string Token(const std::string& key_b64, const std::string& policy,
                    int64_t lifetime_s = 3600, const std::string& sr = kHub) {
    auto key = ossl::Base64Decode(key_b64);
    EXPECT_TRUE(key.has_value());
    return pki::CreateSasToken(*key, sr, clock_.UnixSeconds() + lifetime_s, policy);
  }

  Result<AdmittedDevice> Connect(const std::string& password,
                                 const std::string& username = std::string(kHub) + "/$service",
                                 const std::string& client_id = kClientId,
                                 const std::string& required_hub = "") {
    BackEndAuthenticator authenticator(*registry_, clock_, required_hub);
    auto admitted = authenticator.Authenticate(client_id, username, password);
    EXPECT_EQ(registry_->GetSetting("service.policies").value(), policies_before_);
    return admitted;
  }

  static void ExpectRefused(const Result<AdmittedDevice>& r, const std::string& why,
                            ErrorCode code = ErrorCode::kUnauthenticated) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), code);
    EXPECT_THAT(r.error().message(), HasSubstr(why));
    EXPECT_THAT(r.error().message(), ::testing::Not(HasSubstr("sig=")));
  }

  SecureRandom random_;
  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  std::filesystem::path dir_;
  std::unique_ptr<registry::SqliteRegistry> registry_;
  registry::Actor actor_{"cli"};
  std::optional<std::string> policies_before_;

  void Snapshot() { policies_before_ = registry_->GetSetting("service.policies").value(); }
};

TEST_F(BackEndAuthenticatorTest, Accepts_OwnerPolicyTokenSignedWithItsSecondaryKey) {
  Snapshot();
  auto admitted = Connect(Token(kOwnerKey, "owner", 600));
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message();
  EXPECT_EQ(admitted->device_id, kClientId);
  EXPECT_EQ(admitted->back_end_policy, "owner");
  EXPECT_EQ(admitted->hub, kHub);
  EXPECT_EQ(admitted->token_expiry, clock_.UnixSeconds() + 600);
}

TEST_F(BackEndAuthenticatorTest, Rejects_WrongKey) {
  Snapshot();
  ExpectRefused(Connect(Token(kReaderKey, "owner")), "does not verify for policy owner");
}

TEST_F(BackEndAuthenticatorTest, Rejects_ExpiredToken) {
  Snapshot();
  ExpectRefused(Connect(Token(kOwnerKey, "owner", -1)), "expired");
}

TEST_F(BackEndAuthenticatorTest, Rejects_UnknownPolicy) {
  Snapshot();
  ExpectRefused(Connect(Token(kOwnerKey, "nobody")), "names no shared access policy");
}

TEST_F(BackEndAuthenticatorTest, Rejects_PolicyWithoutServiceConfig) {
  Snapshot();
  ExpectRefused(Connect(Token(kReaderKey, "reader")), "lacks the ServiceConfig right",
                ErrorCode::kPermissionDenied);
}

TEST_F(BackEndAuthenticatorTest, Rejects_TokenForAnotherHub) {
  Snapshot();
  ExpectRefused(Connect(Token(kOwnerKey, "owner", 3600, "hub-b.example.net")), "sr does not cover");
}

TEST_F(BackEndAuthenticatorTest, Rejects_HubOtherThanTheConfiguredOne) {
  Snapshot();
  ExpectRefused(Connect(Token(kOwnerKey, "owner"), std::string(kHub) + "/$service", kClientId,
                        "hub-b.example.net"),
                "another hub");
}

TEST_F(BackEndAuthenticatorTest, Rejects_ClientIdThatCouldBeADevice) {
  Snapshot();
  ExpectRefused(Connect(Token(kOwnerKey, "owner"), std::string(kHub) + "/$service", "dev-1"),
                "does not start with $service");
}

TEST_F(BackEndAuthenticatorTest, Rejects_DeviceTokenAndMalformedPassword) {
  Snapshot();
  ExpectRefused(Connect("not a token"), "");
  auto key = ossl::Base64Decode(kOwnerKey);
  ExpectRefused(Connect(pki::CreateSasToken(*key, kHub, clock_.UnixSeconds() + 60, "")),
                "names no shared access policy");
}

TEST_F(BackEndAuthenticatorTest, Fails_WhenTheStoreHoldsNoPolicies) {
  auto fresh = registry::SqliteRegistry::Open((dir_ / "empty.db").string(), clock_, random_);
  ASSERT_TRUE(fresh.has_value());
  BackEndAuthenticator authenticator(**fresh, clock_, "");
  auto r = authenticator.Authenticate(kClientId, std::string(kHub) + "/$service",
                                      Token(kOwnerKey, "owner"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(BackEndAuthenticatorTest, Recheck_EndsSessionOnExpiryAndWhenThePolicyLosesTheRight) {
  BackEndAuthenticator authenticator(*registry_, clock_, "");
  AdmittedDevice back_end{.device_id = kClientId,
                          .hub = kHub,
                          .token_expiry = clock_.UnixSeconds() + 60,
                          .back_end_policy = "owner"};
  EXPECT_TRUE(authenticator.Recheck(back_end));
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_FALSE(authenticator.Recheck(back_end));
  back_end.token_expiry = clock_.UnixSeconds() + 60;
  SetPolicies({{.name = "owner",
                .primary_key = kOwnerKey,
                .rights = {api::ServiceRight::kEnrollmentRead}}});
  auto kept = authenticator.Recheck(back_end);
  ASSERT_FALSE(kept.has_value());
  EXPECT_THAT(kept.error().message(), HasSubstr("no longer grants ServiceConfig"));
}

TEST(BackEndUsernameTest, RecognizesOnlyHubSlashService) {
  EXPECT_TRUE(IsBackEndUsername("hub-a.example.net/$service"));
  EXPECT_FALSE(IsBackEndUsername("/$service"));
  EXPECT_FALSE(IsBackEndUsername("hub/dev-1/?api-version=2021-04-12"));
  EXPECT_FALSE(IsBackEndUsername("hub/x/$service"));
  EXPECT_FALSE(IsBackEndUsername("hub/$service/?api-version=2021-04-12"));
}

}  // namespace
}  // namespace devid::gateway
