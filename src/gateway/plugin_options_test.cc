#include "gateway/plugin_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace devid::gateway {
namespace {

using ::testing::HasSubstr;
using Options = std::vector<std::pair<std::string, std::string>>;

TEST(PluginOptionsTest, Parses_StoreAndHub) {
  auto parsed = ParsePluginOptions(Options{{"store", "sqlite:///data/devid.db"}, {"hub", "h.io"}});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->store_path, "/data/devid.db");
  EXPECT_EQ(parsed->hub, "h.io");
  auto no_hub = ParsePluginOptions(Options{{"store", "sqlite:///devid.db"}});
  ASSERT_TRUE(no_hub.has_value());
  EXPECT_EQ(no_hub->hub, "");
}

TEST(PluginOptionsTest, Rejects_BadOptionsNamingThem) {
  struct Case {
    Options options;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "plugin_opt_store: missing"},
           {{{"store", "postgres://db/devid"}}, "plugin_opt_store"},
           {{{"store", "sqlite://relative.db"}}, "absolute"},
           {{{"store", "sqlite:///a.db"}, {"store", "sqlite:///b.db"}}, "twice"},
           {{{"store", "sqlite:///a.db"}, {"hub", ""}}, "plugin_opt_hub"},
           {{{"store", "sqlite:///a.db"}, {"hub", "a/b"}}, "plugin_opt_hub"},
           {{{"store", "sqlite:///a.db"}, {"sotre", "x"}}, "plugin_opt_sotre: unknown"},
       }) {
    auto parsed = ParsePluginOptions(c.options);
    ASSERT_FALSE(parsed.has_value()) << c.message;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace devid::gateway
