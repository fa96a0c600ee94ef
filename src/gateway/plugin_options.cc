#include "gateway/plugin_options.h"

#include <set>
#include <string_view>

namespace devid::gateway {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";

Error BadOption(std::string_view key, std::string_view why) {
  return InvalidArgument("devid plugin option plugin_opt_" + std::string(key) + ": " +
                         std::string(why));
}

}  // namespace

Result<PluginOptions> ParsePluginOptions(
    std::span<const std::pair<std::string, std::string>> options) {
  PluginOptions parsed;
  std::set<std::string> seen;
  for (const auto& [key, value] : options) {
    if (!seen.insert(key).second) return std::unexpected(BadOption(key, "given twice"));
    if (key == "store") {
      if (!value.starts_with(kSqliteScheme)) {
        return std::unexpected(
            BadOption(key, "\"" + value + "\" is not a sqlite:// URL (the only store it reads)"));
      }
      std::string path = value.substr(kSqliteScheme.size());
      if (!path.starts_with('/')) {
        return std::unexpected(BadOption(key, "the database path must be absolute"));
      }
      parsed.store_path = std::move(path);
    } else if (key == "hub") {
      if (value.empty() || value.find('/') != std::string::npos) {
        return std::unexpected(BadOption(key, "must be a host name"));
      }
      parsed.hub = value;
    } else {
      return std::unexpected(BadOption(key, "unknown option (known: store, hub)"));
    }
  }
  if (parsed.store_path.empty()) {
    return std::unexpected(BadOption("store", "missing (e.g. sqlite:///var/lib/devid/devid.db)"));
  }
  return parsed;
}

}  // namespace devid::gateway
