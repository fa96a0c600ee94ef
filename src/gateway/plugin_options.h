#pragma once

#include <span>
#include <string>
#include <utility>

#include "base/result.h"

namespace devid::gateway {

// PluginOptions is the plugin's configuration, from mosquitto.conf `plugin_opt_<key> <value>`.
struct PluginOptions {
  // store_path is the devid SQLite database the plugin reads (read-only), from
  // `plugin_opt_store sqlite:///absolute/path/devid.db`. Required.
  std::string store_path;
  // hub, from `plugin_opt_hub <host name>`, admits only devices assigned to that hub; "" admits a
  // device assigned to any hub (the hub it names must still be the one it was assigned).
  std::string hub;
};

// ParsePluginOptions validates the broker's plugin options (key without the `plugin_opt_` prefix,
// value). It fails with kInvalidArgument naming the option on an unknown or repeated key, a
// missing store, a store URL other than sqlite:// with an absolute path, or an empty hub or one
// holding '/'.
Result<PluginOptions> ParsePluginOptions(
    std::span<const std::pair<std::string, std::string>> options);

}  // namespace devid::gateway
