#include "gateway/registry_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::gateway {
namespace {

using std::chrono::milliseconds;

class RegistryCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("devid-cache-" + random_.Hex(8));
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

  void PutGroup(const std::string& id, bool enabled) {
    registry::EnrollmentGroup g;
    g.enrollment_group_id = id;
    g.settings.attestation.type = registry::AttestationType::kSymmetricKey;
    g.settings.attestation.symmetric_key.primary_key = "c2VjcmV0";
    g.settings.enabled = enabled;
    ASSERT_TRUE(registry_->PutEnrollmentGroup(g, std::nullopt, actor_));
  }

  SecureRandom random_;
  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  std::filesystem::path dir_;
  std::unique_ptr<registry::SqliteRegistry> registry_;
  registry::Actor actor_{"cli"};
};

TEST_F(RegistryCacheTest, Reuses_AnswerUntilTtlPasses) {
  PutGroup("grp1", true);
  RegistryCache cache(*registry_, clock_, {.max_entries = 10, .ttl = milliseconds(2000)});
  ASSERT_TRUE(cache.GetEnrollmentGroup("grp1")->settings.enabled);
  PutGroup("grp1", false);
  clock_.Advance(milliseconds(1999));
  EXPECT_TRUE(cache.GetEnrollmentGroup("grp1")->settings.enabled);  // still the cached answer
  clock_.Advance(milliseconds(1));
  EXPECT_FALSE(cache.GetEnrollmentGroup("grp1")->settings.enabled);
}

TEST_F(RegistryCacheTest, Caches_NotFoundForTtl) {
  RegistryCache cache(*registry_, clock_, {.max_entries = 10, .ttl = milliseconds(1000)});
  auto missing = cache.GetEnrollmentGroup("grp1");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  PutGroup("grp1", true);
  EXPECT_EQ(cache.GetEnrollmentGroup("grp1").error().code(), ErrorCode::kNotFound);
  clock_.Advance(milliseconds(1000));
  EXPECT_TRUE(cache.GetEnrollmentGroup("grp1").has_value());
}

TEST_F(RegistryCacheTest, Evicts_LeastRecentlyUsedBeyondMaxEntries) {
  PutGroup("a", true);
  PutGroup("b", true);
  PutGroup("c", true);
  RegistryCache cache(*registry_, clock_, {.max_entries = 2, .ttl = milliseconds(60000)});
  ASSERT_TRUE(cache.GetEnrollmentGroup("a"));
  ASSERT_TRUE(cache.GetEnrollmentGroup("b"));
  ASSERT_TRUE(cache.GetEnrollmentGroup("a"));  // b is now the least recently used
  ASSERT_TRUE(cache.GetEnrollmentGroup("c"));
  EXPECT_EQ(cache.size(), 2u);
  PutGroup("a", false);
  PutGroup("b", false);
  EXPECT_TRUE(cache.GetEnrollmentGroup("a")->settings.enabled);   // cached
  EXPECT_FALSE(cache.GetEnrollmentGroup("b")->settings.enabled);  // evicted, read again
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(RegistryCacheTest, ReadsThrough_WhenDisabled) {
  PutGroup("grp1", true);
  RegistryCache cache(*registry_, clock_, {.max_entries = 0, .ttl = milliseconds(60000)});
  ASSERT_TRUE(cache.GetEnrollmentGroup("grp1")->settings.enabled);
  PutGroup("grp1", false);
  EXPECT_FALSE(cache.GetEnrollmentGroup("grp1")->settings.enabled);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(RegistryCacheTest, KeepsKindsApart) {
  PutGroup("x", true);
  RegistryCache cache(*registry_, clock_, {});
  EXPECT_TRUE(cache.GetEnrollmentGroup("x").has_value());
  EXPECT_EQ(cache.GetEnrollment("x").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cache.GetRegistration("x").error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace devid::gateway
