// DeviceAuthenticator's X.509 admission against a real SqliteRegistry and certificates from an
// in-memory CA: devid-issued certificates by the inventory, others through X509Verifier.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ca/testing/inventory_fixture.h"
#include "gateway/device_authenticator.h"

namespace devid::gateway {
namespace {

using ::testing::HasSubstr;

constexpr char kHub[] = "hub-a.example.net";
constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";

class DeviceAuthenticatorX509Test : public ca::testing::InventoryFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(InventoryFixture::SetUp());
    cache_ = std::make_unique<RegistryCache>(*registry_, clock_,
                                             RegistryCacheOptions{.max_entries = 0});
    authenticator_ = std::make_unique<DeviceAuthenticator>(*cache_, clock_, "");
  }
  void TearDown() override {
    authenticator_.reset();
    cache_.reset();
    InventoryFixture::TearDown();
  }

  // Provision enrolls device_id with a symmetric key (it may still hold a devid certificate), or
  // by the thumbprint of enrolled_pem when set, and registers it, assigned to kHub, through that
  // enrollment or, when group_id is set, through that group.
  void Provision(const std::string& device_id, bool enabled = true,
                 const std::string& enrolled_pem = "", const std::string& group_id = "") {
    registry::Enrollment e;
    e.registration_id = device_id;
    e.settings.attestation.type = registry::AttestationType::kSymmetricKey;
    e.settings.attestation.symmetric_key.primary_key = kDeviceKey;
    if (!enrolled_pem.empty()) {
      e.settings.attestation.type = registry::AttestationType::kX509;
      e.settings.attestation.x509.client_primary_pem = enrolled_pem;
    }
    e.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollment(e, std::nullopt, {"test"}));
    if (!group_id.empty()) {
      registry::EnrollmentGroup g;
      g.enrollment_group_id = group_id;
      g.settings.attestation.type = registry::AttestationType::kSymmetricKey;
      g.settings.attestation.symmetric_key.primary_key = kDeviceKey;
      ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, {"test"}));
    }
    registry::Registration r;
    r.registration_id = device_id;
    r.device_id = device_id;
    r.assigned_hub = kHub;
    r.status = "assigned";
    r.enrollment_group_id = group_id;
    r.attestation_type = registry::AttestationType::kSymmetricKey;
    ASSERT_TRUE(registry_->SaveRegistration(r, {"test"}));
  }

  Result<AdmittedDevice> Connect(const std::string& client_id, const pki::Certificate& leaf) {
    return authenticator_->AuthenticateX509(client_id,
                                            std::string(kHub) + "/" + client_id +
                                                "/?api-version=2021-04-12",
                                            leaf);
  }

  static void ExpectRefused(const Result<AdmittedDevice>& r, const std::string& why) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_THAT(r.error().message(), HasSubstr(why));
  }

  std::unique_ptr<RegistryCache> cache_;
  std::unique_ptr<DeviceAuthenticator> authenticator_;
};

TEST_F(DeviceAuthenticatorX509Test, Accepts_DevidIssuedCertificate_UntilItIsRevoked) {
  Provision("dev-1");
  pki::Certificate leaf = IssueDevice("dev-1");
  auto admitted = Connect("dev-1", leaf);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message();
  EXPECT_EQ(admitted->device_id, "dev-1");
  EXPECT_EQ(admitted->hub, kHub);
  EXPECT_EQ(admitted->certificate_thumbprints, std::vector<std::string>{leaf.Sha256Thumbprint()});
  EXPECT_TRUE(authenticator_->Recheck(*admitted));

  ASSERT_NO_FATAL_FAILURE(Revoke(leaf, 1));
  auto recheck = authenticator_->Recheck(*admitted);
  ASSERT_FALSE(recheck.has_value());
  EXPECT_THAT(recheck.error().message(), HasSubstr("was revoked"));
  ExpectRefused(Connect("dev-1", leaf), "its client certificate (serial " + leaf.SerialHex() +
                                            ") was revoked");
}

TEST_F(DeviceAuthenticatorX509Test, Refuses_CertificateOfAnotherDevice) {
  Provision("dev-1");
  Provision("dev-2");
  ExpectRefused(Connect("dev-2", IssueDevice("dev-1")),
                "the client certificate's CN \"dev-1\" is not the device ID");
}

TEST_F(DeviceAuthenticatorX509Test, Refuses_CertificateNoEnrollmentTrusts) {
  Provision("dev-1");
  ExpectRefused(Connect("dev-1", IssueDevice("dev-1", /*record=*/false)),
                "no enrollment trusts this certificate");
}

TEST_F(DeviceAuthenticatorX509Test, Accepts_CertificateItsIndividualEnrollmentTrusts) {
  pki::Certificate leaf = IssueDevice("dev-1", /*record=*/false);  // as a third-party device's
  Provision("dev-1", true, leaf.ToPem());
  auto admitted = Connect("dev-1", leaf);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message();
  EXPECT_EQ(admitted->certificate_thumbprints, std::vector<std::string>{leaf.Sha256Thumbprint()});
}

TEST_F(DeviceAuthenticatorX509Test, Refuses_CertificateOfAnEnrollmentItDidNotRegisterThrough) {
  pki::Certificate leaf = IssueDevice("dev-1", /*record=*/false);
  Provision("dev-1", true, leaf.ToPem(), /*group_id=*/"grp1");
  ExpectRefused(Connect("dev-1", leaf),
                "its certificate is trusted by another enrollment than it registered through");
}

TEST_F(DeviceAuthenticatorX509Test, Refuses_DisabledOrUnregisteredDevice) {
  Provision("dev-1", /*enabled=*/false);
  ExpectRefused(Connect("dev-1", IssueDevice("dev-1")), "its enrollment is disabled");
  ExpectRefused(Connect("dev-9", IssueDevice("dev-9")), "not registered");
}

TEST_F(DeviceAuthenticatorX509Test, Refuses_ExpiredCertificate) {
  Provision("dev-1");
  pki::Certificate leaf = IssueDevice("dev-1");
  clock_.Set(leaf.NotAfter() + std::chrono::seconds(1));
  ExpectRefused(Connect("dev-1", leaf), "the client certificate has expired");
}

}  // namespace
}  // namespace devid::gateway
