#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/random.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::server {

// RegistryFactory opens a registry at the location part of a store URL (after "scheme://").
using RegistryFactory = std::function<Result<std::unique_ptr<registry::Registry>>(
    const std::string& location, Clock& clock, Random& random)>;

// RegistryFactories maps store URL schemes ("sqlite") to back ends; main fills it explicitly.
using RegistryFactories = std::map<std::string, RegistryFactory, std::less<>>;

// OpenStoreUrl opens the registry a store URL names ("sqlite:///var/lib/devid/devid.db",
// "postgresql://devid@db/devid") with the factory of its scheme. Fails with kInvalidArgument for a
// URL without a scheme or with one no factory serves, else as the factory.
Result<std::unique_ptr<registry::Registry>> OpenStoreUrl(const std::string& url,
                                                         const RegistryFactories& factories,
                                                         Clock& clock, Random& random);

// ServeOptions are `devid serve`'s command-line flags; flags override the config file.
struct ServeOptions {
  std::string data_dir = "data";
  std::string listen;       // "" = from the config
  std::string revocation_listen;  // "" = from the config
  std::string config_file;  // "" = defaults
};

// RunServe runs the server until SIGTERM or SIGINT, then shuts down gracefully, finishing
// in-flight requests. On an empty data dir it first creates the database, the CA and the TLS
// certificate, an ID scope and the provisioningserviceowner policy, and it (re)writes
// connection.json on every start. It must be called before any other thread is started (it
// blocks the shutdown signals so that only it receives them). Returns the process exit code.
int RunServe(const ServeOptions& options, const RegistryFactories& factories);

}  // namespace devid::server
