#include "cli/flag_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace devid::cli {
namespace {

using ::testing::HasSubstr;

TEST(FlagFileTest, ReadsTheFile_OrNamesTheFlagWhenItCannot) {
  std::filesystem::path path = std::filesystem::path(::testing::TempDir()) / "devid-flag-file.pem";
  std::ofstream(path) << "contents\n";
  auto read = ReadFlagFile(path.string(), "--trust-bundle");
  ASSERT_TRUE(read.has_value()) << read.error().message();
  EXPECT_EQ(*read, "contents\n");
  std::filesystem::remove(path);

  auto missing = ReadFlagFile(path.string(), "--trust-bundle");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message(), HasSubstr("--trust-bundle: "));
  EXPECT_THAT(missing.error().message(), HasSubstr(path.string()));
}

}  // namespace
}  // namespace devid::cli
