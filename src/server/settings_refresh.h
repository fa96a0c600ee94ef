#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/service_auth.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::server {

// kIdScopeSetting names the store setting that holds the ID scope (when the config sets none);
// api::kPoliciesSetting holds the service access policies.
inline constexpr std::string_view kIdScopeSetting = "device.idScope";
using api::kPoliciesSetting;

// NodeSettings is what a node serves with from its store's settings.
struct NodeSettings {
  std::string id_scope;
  std::vector<api::AccessPolicy> policies;
};

// SettingsRefresher re-reads the ID scope and the service access policies from the store every
// interval and hands them to on_change when either differs from what the node serves with, so
// a change made through any node, or in the store, takes effect on every node within one
// interval plus one read (docs/scale-out.md, "Caches").
//
// A policies setting that is gone or does not parse leaves the node with no policies (every
// service request refused, an error logged on each read) rather than with keys the store no
// longer holds; a scope setting that is gone or empty keeps the current scope. A read that
// fails changes nothing and is retried at the next interval.
class SettingsRefresher {
 public:
  // SettingsRefresher starts from current, the settings the node started with; the scope is
  // re-read only when scope_from_store (the config sets none). registry must outlive the
  // refresher; on_change is called on the refresher's thread (or RefreshOnce's caller), one call
  // at a time.
  SettingsRefresher(registry::Registry& registry, NodeSettings current, bool scope_from_store,
                    std::function<void(const NodeSettings&)> on_change);
  // ~SettingsRefresher stops the thread Start began, waiting for a read in progress.
  ~SettingsRefresher();
  SettingsRefresher(const SettingsRefresher&) = delete;
  SettingsRefresher& operator=(const SettingsRefresher&) = delete;

  // RefreshOnce reads both settings and calls on_change when either changed. Returns whether it
  // did; fails with the store's error (changing nothing) when a setting cannot be read.
  Result<bool> RefreshOnce();

  // Start calls RefreshOnce every interval on a thread of its own, until destruction; a failed
  // read is logged. Call it once.
  void Start(std::chrono::milliseconds interval);

 private:
  registry::Registry& registry_;
  NodeSettings current_;
  bool scope_from_store_;
  std::function<void(const NodeSettings&)> on_change_;

  std::mutex refresh_mu_;  // one RefreshOnce at a time
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace devid::server
