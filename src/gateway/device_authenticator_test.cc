#include "gateway/device_authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::gateway {
namespace {

using ::testing::HasSubstr;

constexpr char kHub[] = "hub-a.example.net";
// Test vectors from protocol notes §2.2 and §2.3.
constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";
constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";
constexpr char kOtherKey[] = "QHNXCHA0Z8gY8OrUtr6oAXJs55pPllbo1jyAqYJDIiY=";

class DeviceAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("devid-gateway-" + random_.Hex(8));
    std::filesystem::create_directories(dir_);
    auto opened = registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    registry_ = std::move(*opened);
  }
  void TearDown() override {
    registry_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void PutEnrollment(const std::string& id, const std::string& primary,
                     const std::string& secondary = "", bool enabled = true) {
    registry::Enrollment e;
    e.registration_id = id;
    e.settings.attestation.type = registry::AttestationType::kSymmetricKey;
    e.settings.attestation.symmetric_key.primary_key = primary;
    e.settings.attestation.symmetric_key.secondary_key = secondary;
    e.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, actor_));
  }

  void PutGroup(const std::string& id, const std::string& primary, bool enabled = true,
                registry::AttestationType type = registry::AttestationType::kSymmetricKey) {
    registry::EnrollmentGroup g;
    g.enrollment_group_id = id;
    g.settings.attestation.type = type;
    g.settings.attestation.symmetric_key.primary_key = primary;
    g.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, actor_));
  }

  void PutRegistration(const std::string& id, const std::string& group_id = "",
                       const std::string& device_key = "", const std::string& status = "assigned") {
    registry::Registration r;
    r.registration_id = id;
    r.device_id = id;
    r.assigned_hub = kHub;
    r.status = status;
    r.enrollment_group_id = group_id;
    r.attestation_type = device_key.empty() ? registry::AttestationType::kSymmetricKey
                                            : registry::AttestationType::kTpm;
    r.device_key = device_key;
    ASSERT_TRUE(registry_->SaveRegistration(r, actor_));
  }

  std::string Token(const std::string& key_b64, const std::string& device_id,
                    int64_t lifetime_s = 3600, const std::string& hub = kHub) {
    auto key = ossl::Base64Decode(key_b64);
    EXPECT_TRUE(key.has_value());
    // IoT Hub device tokens sign the percent-encoded sr (protocol notes §2.4).
    return pki::CreateSasToken(*key, PercentEncodeComponent(hub + "/devices/" + device_id),
                               clock_.UnixSeconds() + lifetime_s, "");
  }

  static std::string Username(const std::string& device_id, const std::string& hub = kHub) {
    return hub + "/" + device_id + "/?api-version=2021-04-12";
  }

  Result<AdmittedDevice> Connect(const std::string& client_id, const std::string& username,
                                 const std::string& password, const std::string& hub = "") {
    RegistryCache uncached(*registry_, clock_, {.max_entries = 0});
    DeviceAuthenticator authenticator(uncached, clock_, hub);
    return authenticator.AuthenticateSas(client_id, username, password);
  }

  static void ExpectRefused(const Result<AdmittedDevice>& r, const std::string& why) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_THAT(r.error().message(), HasSubstr(why));
  }

  SecureRandom random_;
  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  std::filesystem::path dir_;
  std::unique_ptr<registry::SqliteRegistry> registry_;
  registry::Actor actor_{"cli"};
};

TEST_F(DeviceAuthenticatorTest, Accepts_IndividualPrimaryAndSecondaryKey) {
  PutEnrollment("dev-1", kDeviceKey, kOtherKey);
  PutRegistration("dev-1");
  auto primary = Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1"));
  ASSERT_TRUE(primary.has_value()) << primary.error().message();
  EXPECT_EQ(primary->device_id, "dev-1");
  EXPECT_EQ(primary->hub, kHub);
  auto secondary = Connect("dev-1", Username("dev-1"), Token(kOtherKey, "dev-1"));
  EXPECT_TRUE(secondary.has_value()) << secondary.error().message();
}

TEST_F(DeviceAuthenticatorTest, Accepts_GroupDerivedKey) {
  PutGroup("grp1", kGroupKey);
  PutRegistration("dev-g", "grp1");
  std::string derived = *pki::DeriveSymmetricKey(kGroupKey, "dev-g");
  auto r = Connect("dev-g", Username("dev-g"), Token(derived, "dev-g"));
  EXPECT_TRUE(r.has_value()) << r.error().message();
  ExpectRefused(Connect("dev-g", Username("dev-g"), Token(kGroupKey, "dev-g")), "signature");
}

TEST_F(DeviceAuthenticatorTest, Accepts_TpmDeviceKeyOnly) {
  PutGroup("tpm-grp", "", true, registry::AttestationType::kTpm);
  PutRegistration("dev-t", "tpm-grp", kDeviceKey);
  auto r = Connect("dev-t", Username("dev-t"), Token(kDeviceKey, "dev-t"));
  EXPECT_TRUE(r.has_value()) << r.error().message();
  ExpectRefused(Connect("dev-t", Username("dev-t"), Token(kOtherKey, "dev-t")), "signature");
}

TEST_F(DeviceAuthenticatorTest, Rejects_WrongKey) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kOtherKey, "dev-1")), "signature");
}

TEST_F(DeviceAuthenticatorTest, Rejects_ExpiredToken) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  std::string token = Token(kDeviceKey, "dev-1", 60);
  clock_.Advance(std::chrono::seconds(60));
  ExpectRefused(Connect("dev-1", Username("dev-1"), token), "expired");
}

TEST_F(DeviceAuthenticatorTest, Rejects_TokenOfDeviceAUsedAsDeviceB) {
  PutEnrollment("dev-a", kDeviceKey);
  PutRegistration("dev-a");
  PutEnrollment("dev-b", kDeviceKey);
  PutRegistration("dev-b");
  ExpectRefused(Connect("dev-b", Username("dev-b"), Token(kDeviceKey, "dev-a")), "sr");
}

TEST_F(DeviceAuthenticatorTest, Rejects_ClientIdOtherThanDeviceId) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  ExpectRefused(Connect("dev-2", Username("dev-1"), Token(kDeviceKey, "dev-1")), "client id");
}

TEST_F(DeviceAuthenticatorTest, Rejects_UnregisteredAndUnassignedDevices) {
  PutEnrollment("dev-1", kDeviceKey);
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1")), "not registered");
  PutRegistration("dev-1", "", "", "failed");
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1")), "failed");
}

TEST_F(DeviceAuthenticatorTest, Rejects_DisabledOrDeletedEnrollment) {
  PutEnrollment("dev-1", kDeviceKey, "", false);
  PutRegistration("dev-1");
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1")), "disabled");
  PutGroup("grp1", kGroupKey, false);
  PutRegistration("dev-g", "grp1");
  std::string derived = *pki::DeriveSymmetricKey(kGroupKey, "dev-g");
  ExpectRefused(Connect("dev-g", Username("dev-g"), Token(derived, "dev-g")), "disabled");
  ASSERT_TRUE(registry_->DeleteEnrollment("dev-1", std::nullopt, actor_));
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1")),
                "no longer exists");
}

TEST_F(DeviceAuthenticatorTest, Rejects_OtherHub) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  ExpectRefused(Connect("dev-1", Username("dev-1", "hub-b.example.net"),
                        Token(kDeviceKey, "dev-1", 3600, "hub-b.example.net")),
                "not assigned to hub");
  // The gateway's own hub restricts further.
  ExpectRefused(Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1"), "hub-z.example"),
                "serves hub");
  auto r = Connect("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1"), "HUB-A.example.net");
  EXPECT_TRUE(r.has_value()) << r.error().message();
}

TEST_F(DeviceAuthenticatorTest, Rejects_MalformedUsernameOrPassword) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  std::string token = Token(kDeviceKey, "dev-1");
  ExpectRefused(Connect("dev-1", "dev-1", token), "username");
  ExpectRefused(Connect("dev-1", std::string(kHub) + "/dev-1/", token), "username");
  ExpectRefused(Connect("dev-1", std::string(kHub) + "/dev-1/m1/?api-version=1", token),
                "username");
  ExpectRefused(Connect("dev-1", Username("dev-1"), ""), "");
  ExpectRefused(Connect("dev-1", Username("dev-1"), kDeviceKey), "");
  // A policy token (with skn) is not a device token.
  auto key = ossl::Base64Decode(kDeviceKey);
  std::string with_skn =
      pki::CreateSasToken(*key, PercentEncodeComponent(std::string(kHub) + "/devices/dev-1"),
                          clock_.UnixSeconds() + 60, "iothubowner");
  ExpectRefused(Connect("dev-1", Username("dev-1"), with_skn), "policy");
}

TEST_F(DeviceAuthenticatorTest, Rejects_DeviceIdWithTopicWildcard) {
  ExpectRefused(Connect("dev+", Username("dev+"), Token(kDeviceKey, "dev+")), "reserves");
  ExpectRefused(Connect("#", Username("#"), Token(kDeviceKey, "#")), "reserves");
}

TEST_F(DeviceAuthenticatorTest, Reads_ThroughReadOnlyRegistry) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  registry::SqliteRegistryOptions options;
  options.read_only = true;
  auto reader =
      registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_, options);
  ASSERT_TRUE(reader.has_value()) << reader.error().message();
  RegistryCache cache(**reader, clock_, {});
  DeviceAuthenticator authenticator(cache, clock_, "");
  auto r = authenticator.AuthenticateSas("dev-1", Username("dev-1"), Token(kDeviceKey, "dev-1"));
  EXPECT_TRUE(r.has_value()) << r.error().message();
}

TEST_F(DeviceAuthenticatorTest, Recheck_KeepsAdmittedDeviceUntilItsGroupIsDisabled) {
  PutGroup("grp1", kGroupKey);
  PutRegistration("dev-g", "grp1");
  std::string derived = *pki::DeriveSymmetricKey(kGroupKey, "dev-g");
  RegistryCache uncached(*registry_, clock_, {.max_entries = 0});
  DeviceAuthenticator authenticator(uncached, clock_, "");
  auto admitted =
      authenticator.AuthenticateSas("dev-g", Username("dev-g"), Token(derived, "dev-g"));
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message();
  EXPECT_EQ(admitted->token_expiry, clock_.UnixSeconds() + 3600);
  auto kept = authenticator.Recheck(*admitted);
  EXPECT_TRUE(kept.has_value()) << kept.error().message();
  PutGroup("grp1", kGroupKey, false);
  auto refused = authenticator.Recheck(*admitted);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(refused.error().message(), HasSubstr("its enrollment is disabled"));
}

TEST_F(DeviceAuthenticatorTest, Recheck_RefusesDeletedRegistrationOrEnrollment) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  RegistryCache uncached(*registry_, clock_, {.max_entries = 0});
  DeviceAuthenticator authenticator(uncached, clock_, "");
  AdmittedDevice device{"dev-1", kHub, clock_.UnixSeconds() + 60};
  ASSERT_TRUE(authenticator.Recheck(device).has_value());
  ASSERT_TRUE(registry_->DeleteEnrollment("dev-1", std::nullopt, actor_));
  auto no_enrollment = authenticator.Recheck(device);
  ASSERT_FALSE(no_enrollment.has_value());
  EXPECT_THAT(no_enrollment.error().message(), HasSubstr("no longer exists"));
  PutEnrollment("dev-1", kDeviceKey);
  ASSERT_TRUE(registry_->DeleteRegistration("dev-1", std::nullopt, actor_));
  auto unregistered = authenticator.Recheck(device);
  ASSERT_FALSE(unregistered.has_value());
  EXPECT_EQ(unregistered.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(unregistered.error().message(), HasSubstr("not registered"));
}

TEST_F(DeviceAuthenticatorTest, Recheck_RefusesOnceTheTokenExpiresOrTheHubChanges) {
  PutEnrollment("dev-1", kDeviceKey);
  PutRegistration("dev-1");
  RegistryCache uncached(*registry_, clock_, {.max_entries = 0});
  DeviceAuthenticator authenticator(uncached, clock_, "");
  AdmittedDevice device{"dev-1", kHub, clock_.UnixSeconds() + 60};
  clock_.Advance(std::chrono::seconds(60));
  auto expired = authenticator.Recheck(device);
  ASSERT_FALSE(expired.has_value());
  EXPECT_THAT(expired.error().message(), HasSubstr("expired"));
  device.token_expiry = clock_.UnixSeconds() + 60;
  device.hub = "hub-b.example.net";
  auto moved = authenticator.Recheck(device);
  ASSERT_FALSE(moved.has_value());
  EXPECT_THAT(moved.error().message(), HasSubstr("not assigned to hub hub-b.example.net"));
}

TEST(DeviceIdFromUsernameTest, Extracts_DeviceId) {
  EXPECT_EQ(DeviceIdFromUsername("h/d/?api-version=2021-04-12&DeviceClientType=x"), "d");
  EXPECT_EQ(DeviceIdFromUsername("h/d/?model-id=x"), "");
  EXPECT_EQ(DeviceIdFromUsername("/d/?api-version=1"), "");
  EXPECT_EQ(DeviceIdFromUsername("h//?api-version=1"), "");
  EXPECT_EQ(DeviceIdFromUsername(""), "");
}

}  // namespace
}  // namespace devid::gateway
