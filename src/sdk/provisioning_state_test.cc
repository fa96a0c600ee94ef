#include "devid/provisioning_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace devid::sdk {
namespace {

using ::testing::HasSubstr;

class ProvisioningStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/devid-state-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

Assignment At(const std::string& hub) {
  Assignment a;
  a.registration_id = "dev-1";
  a.device_id = "dev-1";
  a.assigned_hub = hub;
  a.substatus = "initialAssignment";
  return a;
}

TEST_F(ProvisioningStateTest, SaveThenLoad_RoundTripsOwnerOnly) {
  ASSERT_TRUE(SaveAssignment(Path("state.json"), At("hub-a.example")));
  auto loaded = LoadAssignment(Path("state.json"));
  ASSERT_TRUE(loaded) << loaded.error().message();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->assigned_hub, "hub-a.example");
  EXPECT_EQ((*loaded)->device_id, "dev-1");
  EXPECT_EQ((*loaded)->substatus, "initialAssignment");
  struct stat st {};
  ASSERT_EQ(::stat(Path("state.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ProvisioningStateTest, Load_NoFileYet_IsEmpty) {
  auto loaded = LoadAssignment(Path("none.json"));
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(ProvisioningStateTest, Load_Rejects_ForeignFile) {
  std::ofstream(Path("bad.json")) << R"({"registrationId": "dev-1"})";
  auto loaded = LoadAssignment(Path("bad.json"));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(loaded.error().message(), HasSubstr("is not one devid wrote"));
}

TEST_F(ProvisioningStateTest, HubMoved_ComparesHubs) {
  EXPECT_FALSE(HubMoved(std::nullopt, At("hub-a.example")));
  EXPECT_FALSE(HubMoved(At("hub-a.example"), At("hub-a.example")));
  EXPECT_TRUE(HubMoved(At("hub-a.example"), At("hub-b.example")));
}

}  // namespace
}  // namespace devid::sdk
