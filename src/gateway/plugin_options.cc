#include "gateway/plugin_options.h"

#include <charconv>
#include <set>
#include <string_view>

namespace devid::gateway {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";

Error BadOption(std::string_view key, std::string_view why) {
  return InvalidArgument("devid plugin option plugin_opt_" + std::string(key) + ": " +
                         std::string(why));
}

// ParseInt reads a whole decimal number in [min, max].
Result<int64_t> ParseInt(std::string_view key, std::string_view value, int64_t min, int64_t max) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < min || n > max) {
    return std::unexpected(BadOption(key, "\"" + std::string(value) +
                                              "\" is not a whole number from " +
                                              std::to_string(min) + " to " + std::to_string(max)));
  }
  return n;
}

Status CheckThrottle(std::string_view prefix, const AuthThrottleOptions& throttle) {
  if (throttle.slow_after > throttle.refuse_after) {
    return std::unexpected(BadOption(std::string(prefix) + "slow_after",
                                     "must not exceed " + std::string(prefix) + "refuse_after"));
  }
  return Ok();
}

}  // namespace

bool IsSqliteStore(std::string_view store_url) { return store_url.starts_with(kSqliteScheme); }

std::string SqlitePath(std::string_view store_url) {
  return std::string(store_url.substr(kSqliteScheme.size()));
}

Result<PluginOptions> ParsePluginOptions(
    std::span<const std::pair<std::string, std::string>> options) {
  PluginOptions parsed;
  std::set<std::string> seen;
  for (const auto& [key, value] : options) {
    if (!seen.insert(key).second) return std::unexpected(BadOption(key, "given twice"));
    if (key == "store") {
      if (IsSqliteStore(value)) {
        if (!SqlitePath(value).starts_with('/')) {
          return std::unexpected(BadOption(key, "the database path must be absolute"));
        }
      } else if (!value.starts_with("postgresql://") && !value.starts_with("postgres://")) {
        return std::unexpected(BadOption(key, "is neither a sqlite:// nor a postgresql:// URL"));
      }
      parsed.store_url = value;
    } else if (key == "hub") {
      if (value.empty() || value.find('/') != std::string::npos) {
        return std::unexpected(BadOption(key, "must be a host name"));
      }
      parsed.hub = value;
    } else if (key == "cache_entries") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 0, 10'000'000));
      parsed.cache.max_entries = static_cast<size_t>(n);
    } else if (key == "cache_ttl_ms") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 0, kMaxDisableDelayMs));
      parsed.cache.ttl = std::chrono::milliseconds(n);
    } else if (key == "recheck_interval_ms") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 100, kMaxDisableDelayMs));
      parsed.sessions.interval = std::chrono::milliseconds(n);
    } else if (key == "recheck_batch") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 1'000'000));
      parsed.sessions.batch = static_cast<size_t>(n);
    } else if (key == "throttle_slow_after") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 1000));
      parsed.client_throttle.slow_after = static_cast<int>(n);
    } else if (key == "throttle_refuse_after") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 1000));
      parsed.client_throttle.refuse_after = static_cast<int>(n);
    } else if (key == "throttle_address_slow_after") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 100'000));
      parsed.address_throttle.slow_after = static_cast<int>(n);
    } else if (key == "throttle_address_refuse_after") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 100'000));
      parsed.address_throttle.refuse_after = static_cast<int>(n);
    } else if (key == "throttle_refuse_seconds") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 86'400));
      parsed.client_throttle.refuse_for = parsed.address_throttle.refuse_for =
          std::chrono::seconds(n);
    } else if (key == "throttle_entries") {
      DEVID_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, value, 1, 10'000'000));
      parsed.client_throttle.max_entries = parsed.address_throttle.max_entries =
          static_cast<size_t>(n);
    } else if (key == "publish_topics") {
      DEVID_ASSIGN_OR_RETURN(parsed.topics.publish_roots, ParseTopicRoots(key, value));
    } else if (key == "receive_topics") {
      DEVID_ASSIGN_OR_RETURN(parsed.topics.receive_roots, ParseTopicRoots(key, value));
    } else {
      return std::unexpected(BadOption(
          key,
          "unknown option (known: store, hub, cache_entries, cache_ttl_ms, "
          "recheck_interval_ms, recheck_batch, throttle_slow_after, throttle_refuse_after, "
          "throttle_address_slow_after, throttle_address_refuse_after, "
          "throttle_refuse_seconds, throttle_entries, publish_topics, receive_topics)"));
    }
  }
  if (parsed.store_url.empty()) {
    return std::unexpected(BadOption("store", "missing (e.g. sqlite:///var/lib/devid/devid.db)"));
  }
  DEVID_TRY(CheckThrottle("throttle_", parsed.client_throttle));
  DEVID_TRY(CheckThrottle("throttle_address_", parsed.address_throttle));
  // A disable reaches a live session after at most one cache TTL (the recheck may read a cached
  // answer) plus one recheck interval.
  if (parsed.cache.ttl.count() + parsed.sessions.interval.count() > kMaxDisableDelayMs) {
    return std::unexpected(BadOption(
        "cache_ttl_ms", "plus recheck_interval_ms exceeds " + std::to_string(kMaxDisableDelayMs) +
                            " ms, the bound on how long a disabled device keeps its session"));
  }
  return parsed;
}

}  // namespace devid::gateway
