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
  EXPECT_EQ(parsed->store_url, "sqlite:///data/devid.db");
  EXPECT_TRUE(IsSqliteStore(parsed->store_url));
  EXPECT_EQ(SqlitePath(parsed->store_url), "/data/devid.db");
  EXPECT_EQ(parsed->hub, "h.io");
  auto no_hub = ParsePluginOptions(Options{{"store", "sqlite:///devid.db"}});
  ASSERT_TRUE(no_hub.has_value());
  EXPECT_EQ(no_hub->hub, "");
}

TEST(PluginOptionsTest, Parses_PostgresStoreAndLimits) {
  auto parsed = ParsePluginOptions(Options{{"store", "postgresql://gw@db/devid"},
                                           {"cache_entries", "500"},
                                           {"cache_ttl_ms", "1000"},
                                           {"recheck_interval_ms", "4000"},
                                           {"recheck_batch", "200"},
                                           {"throttle_slow_after", "2"},
                                           {"throttle_refuse_after", "4"},
                                           {"throttle_address_slow_after", "8"},
                                           {"throttle_address_refuse_after", "16"},
                                           {"throttle_refuse_seconds", "60"},
                                           {"throttle_entries", "100"}});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_FALSE(IsSqliteStore(parsed->store_url));
  EXPECT_EQ(parsed->cache.max_entries, 500u);
  EXPECT_EQ(parsed->cache.ttl, std::chrono::milliseconds(1000));
  EXPECT_EQ(parsed->sessions.interval, std::chrono::milliseconds(4000));
  EXPECT_EQ(parsed->sessions.batch, 200u);
  EXPECT_EQ(parsed->client_throttle.slow_after, 2);
  EXPECT_EQ(parsed->client_throttle.refuse_after, 4);
  EXPECT_EQ(parsed->address_throttle.slow_after, 8);
  EXPECT_EQ(parsed->address_throttle.refuse_after, 16);
  EXPECT_EQ(parsed->address_throttle.refuse_for, std::chrono::seconds(60));
  EXPECT_EQ(parsed->client_throttle.max_entries, 100u);
  // The defaults keep a disable within kMaxDisableDelayMs.
  auto defaults = ParsePluginOptions(Options{{"store", "postgres://db/devid"}});
  ASSERT_TRUE(defaults.has_value()) << defaults.error().message();
  EXPECT_LE(defaults->cache.ttl.count() + defaults->sessions.interval.count(), kMaxDisableDelayMs);
}

TEST(PluginOptionsTest, Rejects_BadOptionsNamingThem) {
  struct Case {
    Options options;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "plugin_opt_store: missing"},
           {{{"store", "mysql://db/devid"}}, "plugin_opt_store: is neither"},
           {{{"store", "sqlite://relative.db"}}, "absolute"},
           {{{"store", "sqlite:///a.db"}, {"store", "sqlite:///b.db"}}, "twice"},
           {{{"store", "sqlite:///a.db"}, {"hub", ""}}, "plugin_opt_hub"},
           {{{"store", "sqlite:///a.db"}, {"hub", "a/b"}}, "plugin_opt_hub"},
           {{{"store", "sqlite:///a.db"}, {"sotre", "x"}}, "plugin_opt_sotre: unknown"},
           {{{"store", "sqlite:///a.db"}, {"cache_ttl_ms", "-1"}}, "plugin_opt_cache_ttl_ms"},
           {{{"store", "sqlite:///a.db"}, {"cache_entries", "10k"}}, "plugin_opt_cache_entries"},
           {{{"store", "sqlite:///a.db"}, {"recheck_interval_ms", "50"}}, "from 100 to 5000"},
           {{{"store", "sqlite:///a.db"}, {"recheck_batch", "0"}}, "plugin_opt_recheck_batch"},
           {{{"store", "sqlite:///a.db"},
             {"cache_ttl_ms", "4000"},
             {"recheck_interval_ms", "1500"}},
            "plugin_opt_cache_ttl_ms: plus recheck_interval_ms exceeds 5000 ms"},
           {{{"store", "sqlite:///a.db"}, {"throttle_slow_after", "11"}},
            "plugin_opt_throttle_slow_after: must not exceed throttle_refuse_after"},
           {{{"store", "sqlite:///a.db"}, {"throttle_address_refuse_after", "5"}},
            "plugin_opt_throttle_address_slow_after: must not exceed"},
           {{{"store", "sqlite:///a.db"}, {"throttle_entries", "0"}},
            "plugin_opt_throttle_entries"},
           {{{"store", "sqlite:///a.db"}, {"publish_topics", "devices/+/events"}},
            "plugin_opt_publish_topics: topic template \"devices/+/events\" holds a wildcard"},
           {{{"store", "sqlite:///a.db"}, {"receive_topics", " "}},
            "plugin_opt_receive_topics: no topic template given"},
       }) {
    auto parsed = ParsePluginOptions(c.options);
    ASSERT_FALSE(parsed.has_value()) << c.message;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.message));
  }
}

TEST(PluginOptionsTest, Parses_TopicLayout_DefaultingToIotHub) {
  std::vector<std::pair<std::string, std::string>> options = {{"store", "sqlite:///a.db"}};
  auto iot_hub = ParsePluginOptions(options);
  ASSERT_TRUE(iot_hub.has_value()) << iot_hub.error().message();
  EXPECT_EQ(iot_hub->topics.publish_roots, TopicLayout::IotHub().publish_roots);
  EXPECT_EQ(iot_hub->topics.receive_roots, TopicLayout::IotHub().receive_roots);
  options.emplace_back("publish_topics", "telemetry/{deviceId}  $shared/status");
  auto custom = ParsePluginOptions(options);
  ASSERT_TRUE(custom.has_value()) << custom.error().message();
  EXPECT_EQ(custom->topics.publish_roots,
            (std::vector<std::string>{"telemetry/{deviceId}", "$shared/status"}));
  EXPECT_EQ(custom->topics.receive_roots, TopicLayout::IotHub().receive_roots);
}

}  // namespace
}  // namespace devid::gateway
