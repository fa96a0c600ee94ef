#pragma once

#include <span>
#include <string>
#include <utility>

#include "base/result.h"
#include "gateway/auth_throttle.h"
#include "gateway/registry_cache.h"
#include "gateway/session_monitor.h"
#include "gateway/topic_policy.h"

namespace devid::gateway {

// PluginOptions is the plugin's configuration, from mosquitto.conf `plugin_opt_<key> <value>`.
struct PluginOptions {
  // store_url is the devid store the plugin reads, from `plugin_opt_store`: sqlite:///absolute/path
  // (opened read-only) or a postgresql:// (or postgres://) URL. Required.
  std::string store_url;
  // hub, from `plugin_opt_hub <host name>`, admits only devices assigned to that hub; "" admits a
  // device assigned to any hub (the hub it names must still be the one it was assigned).
  std::string hub;
  // cache: plugin_opt_cache_entries, plugin_opt_cache_ttl_ms.
  RegistryCacheOptions cache;
  // sessions: plugin_opt_recheck_interval_ms, plugin_opt_recheck_batch.
  SessionMonitorOptions sessions;
  // client_throttle (per client id): plugin_opt_throttle_slow_after,
  // plugin_opt_throttle_refuse_after; address_throttle (per remote address):
  // plugin_opt_throttle_address_slow_after, plugin_opt_throttle_address_refuse_after. Both:
  // plugin_opt_throttle_refuse_seconds, plugin_opt_throttle_entries.
  AuthThrottleOptions client_throttle;
  AuthThrottleOptions address_throttle{.slow_after = 20, .refuse_after = 100};
  // topics: plugin_opt_publish_topics and plugin_opt_receive_topics each replace their half of
  // the IoT Hub layout with a space-separated list of root templates (ParseTopicRoots).
  TopicLayout topics = TopicLayout::IotHub();
};

// kMaxDisableDelayMs bounds cache_ttl_ms + recheck_interval_ms: the longest a disabled device's
// live session may last when a sweep covers every session (sessions <= recheck_batch).
inline constexpr int64_t kMaxDisableDelayMs = 5000;

// IsSqliteStore tells whether a store URL names the SQLite back end; SqlitePath returns its path.
bool IsSqliteStore(std::string_view store_url);
std::string SqlitePath(std::string_view store_url);

// ParsePluginOptions validates the broker's plugin options (key without the `plugin_opt_` prefix,
// value). It fails with kInvalidArgument naming the option on an unknown or repeated key, a
// missing store, a store URL that is neither sqlite:// with an absolute path nor postgresql://, an
// empty hub or one holding '/', a topic template ParseTopicRoots refuses, a number that is not a
// whole number in its range, slow_after above refuse_after, or cache_ttl_ms + recheck_interval_ms
// above kMaxDisableDelayMs.
Result<PluginOptions> ParsePluginOptions(
    std::span<const std::pair<std::string, std::string>> options);

}  // namespace devid::gateway
