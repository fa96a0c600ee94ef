#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "ca/authority.h"
#include "ca/inventory.h"
#include "ca/testing/mini_ca.h"
#include "keys/software/file_key_store.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::ca::testing {

// InventoryFixture gives a test an in-memory CA (MiniCa) and a real SqliteRegistry on a temporary
// file, both on one fake clock, and helpers to issue and revoke certificates through them.
class InventoryFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("devid-inventory-" + std::to_string(::getpid()) + "-" + random_.Hex(4));
    std::filesystem::create_directories(dir_);
    auto registry = registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_);
    ASSERT_TRUE(registry) << registry.error().message();
    registry_ = std::move(*registry);
    auto authority = MakeTestCa(clock_, random_, {.base_url = "https://ca.test"});
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
  }

  void TearDown() override {
    registry_.reset();
    std::filesystem::remove_all(dir_);
  }

  const IssuingCa& Issuer() const { return authority_->issuers().front(); }

  // IssueDevice issues a device-client certificate and records it in the inventory (unless
  // record is false, for an "unknown" certificate).
  pki::Certificate IssueDevice(const std::string& name, bool record = true) {
    auto key = keys::GenerateSoftwareKey(keys::KeyAlgorithm::kEcdsaP256);
    EXPECT_TRUE(key);
    auto certificate =
        authority_->Issue(kDeviceClientProfile, {.common_name = name, .public_key = key->get()});
    EXPECT_TRUE(certificate) << certificate.error().message();
    if (record) {
      auto recorded = registry_->RecordCertificate(
          InventoryRecord(*certificate, registry::CertificateSource::kIssued, name,
                          std::string(kDeviceClientProfile)),
          registry::kAuditCertificateIssue, {"test"});
      EXPECT_TRUE(recorded) << recorded.error().message();
    }
    return std::move(*certificate);
  }

  void Revoke(const pki::Certificate& certificate, int reason) {
    auto revoked =
        registry_->RevokeCertificates({.serial = certificate.SerialHex()}, reason, {"test"});
    ASSERT_TRUE(revoked) << revoked.error().message();
    ASSERT_EQ(revoked->size(), 1u);
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::filesystem::path dir_;
  std::unique_ptr<registry::SqliteRegistry> registry_;
  std::unique_ptr<Authority> authority_;
};

}  // namespace devid::ca::testing
