// The command signer as `devid serve` keeps it: made on first start, reused after, and renewed
// with the same key when a third of its certificate's life is left.

#include "server/command_signing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <filesystem>

#include "base/file.h"
#include "ca/profile.h"
#include "ca/testing/inventory_fixture.h"
#include "keys/software/file_key_store.h"

namespace devid::server {
namespace {

class CommandSigningTest : public ca::testing::InventoryFixture {
 protected:
  void SetUp() override {
    InventoryFixture::SetUp();
    key_stores_.Add("file", file_keys_);
    std::filesystem::create_directories(dir_ / "ca");
  }

  SignerFiles Files() const {
    return {"", (dir_ / "ca").string(), (dir_ / "command-signer.pem").string()};
  }

  std::unique_ptr<ca::JwsSigner> LoadOrIssue() {
    auto signer = LoadOrIssueSigner(Files(), *authority_, key_stores_, *registry_, clock_, random_);
    EXPECT_TRUE(signer) << signer.error().message();
    return signer ? std::move(*signer) : nullptr;
  }

  size_t RecordedSigners() {
    auto page = registry_->QueryCertificates({}, {.max_items = 100});
    size_t n = 0;
    for (const auto& record : page.value_or(registry::Page<registry::CertificateRecord>{}).items) {
      n += record.profile == ca::kCommandSignerProfile;
    }
    return n;
  }

  keys::FileKeyStore file_keys_{[](const std::string&) { return std::nullopt; }};
  keys::KeyStores key_stores_;
};

TEST_F(CommandSigningTest, Issues_OnFirstStartAndReusesAfterwards) {
  auto first = LoadOrIssue();
  ASSERT_TRUE(first);
  EXPECT_EQ(ReadFile(Files().certificate_file).value_or(""), first->certificate().ToPem());
  auto key_mode = std::filesystem::status(dir_ / "ca/command-signer/signer.key").permissions();
  EXPECT_EQ(key_mode & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  clock_.Advance(std::chrono::hours(24 * 30));
  auto second = LoadOrIssue();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->certificate().SerialHex(), first->certificate().SerialHex());
  EXPECT_EQ(RecordedSigners(), 1u);
}

TEST_F(CommandSigningTest, Renews_WithTheSameKeyWhenAThirdOfItsLifeIsLeft) {
  auto first = LoadOrIssue();
  ASSERT_TRUE(first);
  std::string first_serial = first->certificate().SerialHex();
  RenewingSigner renewing(Files(), std::move(first), *authority_, key_stores_, *registry_, clock_,
                          random_);
  clock_.Advance(std::chrono::hours(24 * 200));
  auto kept = renewing.Current();
  ASSERT_TRUE(kept) << kept.error().message();
  EXPECT_EQ((*kept)->certificate().SerialHex(), first_serial);
  clock_.Advance(std::chrono::hours(24 * 50));  // day 250 of 365: under a third left
  auto renewed = renewing.Current();
  ASSERT_TRUE(renewed) << renewed.error().message();
  EXPECT_NE((*renewed)->certificate().SerialHex(), first_serial);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey((*renewed)->certificate().get()),
                        X509_get0_pubkey((*kept)->certificate().get())),
            1);
  EXPECT_EQ(ReadFile(Files().certificate_file).value_or(""), (*renewed)->certificate().ToPem());
  EXPECT_EQ(RecordedSigners(), 2u);
  // What was signed before the renewal still verifies with the old certificate.
  EXPECT_TRUE((*kept)->Sign("{}"));
}

TEST_F(CommandSigningTest, Reissues_WhenTheFileHoldsACertificateForAnotherKey) {
  auto first = LoadOrIssue();
  ASSERT_TRUE(first);
  auto other = IssueDevice("not-a-signer", /*record=*/false);
  ASSERT_TRUE(WriteFileAtomically(Files().certificate_file, other.ToPem(), 0644));
  auto second = LoadOrIssue();
  ASSERT_TRUE(second);
  EXPECT_NE(second->certificate().SerialHex(), other.SerialHex());
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(second->certificate().get()),
                        X509_get0_pubkey(first->certificate().get())),
            1);
  EXPECT_EQ(RecordedSigners(), 2u);
}

}  // namespace
}  // namespace devid::server
