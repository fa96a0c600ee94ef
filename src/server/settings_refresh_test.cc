#include "server/settings_refresh.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::server {
namespace {

class SettingsRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("devid-settings-" + random_.Hex(8));
    std::filesystem::create_directories(dir_);
    auto opened = registry::SqliteRegistry::Open((dir_ / "devid.db").string(), clock_, random_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    registry_ = std::move(*opened);
    Store(kIdScopeSetting, "0ne00000001");
    Store(kPoliciesSetting, api::PoliciesToJson({owner_}));
  }
  void TearDown() override {
    registry_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void Store(std::string_view name, std::string_view value) {
    ASSERT_TRUE(registry_->SetSetting(name, value, actor_));
  }

  // Refresher starts from what SetUp stored and records every change it hands on.
  std::unique_ptr<SettingsRefresher> Refresher(bool scope_from_store) {
    return std::make_unique<SettingsRefresher>(
        *registry_, NodeSettings{"0ne00000001", {owner_}}, scope_from_store,
        [this](const NodeSettings& settings) { changes_.push_back(settings); });
  }

  SecureRandom random_;
  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  std::filesystem::path dir_;
  std::unique_ptr<registry::Registry> registry_;
  registry::Actor actor_{"test"};
  api::AccessPolicy owner_{"provisioningserviceowner", "cHJpbWFyeQ==", "c2Vjb25kYXJ5",
                           api::AllServiceRights()};
  std::vector<NodeSettings> changes_;
};

TEST_F(SettingsRefreshTest, ChangesNothing_WhenTheStoreHoldsWhatTheNodeServes) {
  auto refresher = Refresher(true);
  auto refreshed = refresher->RefreshOnce();
  ASSERT_TRUE(refreshed) << refreshed.error().message();
  EXPECT_FALSE(*refreshed);
  EXPECT_TRUE(changes_.empty());
}

TEST_F(SettingsRefreshTest, Applies_RotatedServiceKey) {
  auto refresher = Refresher(true);
  api::AccessPolicy rotated = owner_;
  rotated.primary_key = "cm90YXRlZA==";
  Store(kPoliciesSetting, api::PoliciesToJson({rotated}));
  auto refreshed = refresher->RefreshOnce();
  ASSERT_TRUE(refreshed) << refreshed.error().message();
  EXPECT_TRUE(*refreshed);
  ASSERT_EQ(changes_.size(), 1u);
  ASSERT_EQ(changes_[0].policies.size(), 1u);
  EXPECT_EQ(changes_[0].policies[0].primary_key, "cm90YXRlZA==");
  EXPECT_EQ(changes_[0].id_scope, "0ne00000001");
  // Handed on once: the next read finds nothing new.
  EXPECT_FALSE(*refresher->RefreshOnce());
  EXPECT_EQ(changes_.size(), 1u);
}

TEST_F(SettingsRefreshTest, Applies_StoredIdScope_OnlyWhenTheConfigSetsNone) {
  Store(kIdScopeSetting, "0ne00000002");
  auto configured = Refresher(false);
  EXPECT_FALSE(*configured->RefreshOnce());
  EXPECT_TRUE(changes_.empty());

  auto from_store = Refresher(true);
  EXPECT_TRUE(*from_store->RefreshOnce());
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0].id_scope, "0ne00000002");
  EXPECT_EQ(changes_[0].policies, std::vector<api::AccessPolicy>{owner_});
}

TEST_F(SettingsRefreshTest, KeepsTheScope_WhenTheStoredOneIsEmpty) {
  Store(kIdScopeSetting, "");
  auto refresher = Refresher(true);
  EXPECT_FALSE(*refresher->RefreshOnce());
  EXPECT_TRUE(changes_.empty());
}

TEST_F(SettingsRefreshTest, RefusesEveryServiceKey_WhenStoredPoliciesDoNotParse) {
  auto refresher = Refresher(true);
  Store(kPoliciesSetting, "{not json");
  EXPECT_TRUE(*refresher->RefreshOnce());
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_TRUE(changes_[0].policies.empty());

  // Repairing the store brings the keys back.
  Store(kPoliciesSetting, api::PoliciesToJson({owner_}));
  EXPECT_TRUE(*refresher->RefreshOnce());
  ASSERT_EQ(changes_.size(), 2u);
  EXPECT_EQ(changes_[1].policies, std::vector<api::AccessPolicy>{owner_});
}

TEST_F(SettingsRefreshTest, RefusesEveryServiceKey_WhenStoredPoliciesAreEmpty) {
  auto refresher = Refresher(true);
  Store(kPoliciesSetting, "[]");
  EXPECT_TRUE(*refresher->RefreshOnce());
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_TRUE(changes_[0].policies.empty());
}

TEST_F(SettingsRefreshTest, Start_AppliesAChangeWithinTheInterval) {
  std::atomic<int> changes{0};
  SettingsRefresher refresher(*registry_, NodeSettings{"0ne00000001", {owner_}}, true,
                              [&](const NodeSettings&) { ++changes; });
  refresher.Start(std::chrono::milliseconds(20));
  Store(kIdScopeSetting, "0ne00000003");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (changes.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(changes.load(), 1);
}

}  // namespace
}  // namespace devid::server
