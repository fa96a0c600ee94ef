#include "server/settings_refresh.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace devid::server {

SettingsRefresher::SettingsRefresher(registry::Registry& registry, NodeSettings current,
                                     bool scope_from_store,
                                     std::function<void(const NodeSettings&)> on_change)
    : registry_(registry),
      current_(std::move(current)),
      scope_from_store_(scope_from_store),
      on_change_(std::move(on_change)) {}

SettingsRefresher::~SettingsRefresher() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<bool> SettingsRefresher::RefreshOnce() {
  std::lock_guard lock(refresh_mu_);
  std::optional<std::string> scope;
  if (scope_from_store_) {
    DEVID_ASSIGN_OR_RETURN(scope, registry_.GetSetting(kIdScopeSetting));
  }
  DEVID_ASSIGN_OR_RETURN(std::optional<std::string> policies_text,
                         registry_.GetSetting(kPoliciesSetting));

  NodeSettings next = current_;
  if (scope && !scope->empty()) {
    next.id_scope = *scope;
  } else if (scope_from_store_) {
    spdlog::warn("settings: {} is missing from the store; keeping ID scope {}", kIdScopeSetting,
                 current_.id_scope);
  }
  // Fail closed: keys the store no longer holds, or holds unreadably, stop working.
  auto policies = policies_text ? api::PoliciesFromJson(*policies_text)
                                : Result<std::vector<api::AccessPolicy>>(
                                      std::unexpected(NotFound("the setting is missing")));
  if (policies && !policies->empty()) {
    next.policies = std::move(*policies);
  } else {
    next.policies.clear();
    spdlog::error("settings: {} in the store: {}; refusing every service request until it is "
                  "repaired",
                  kPoliciesSetting,
                  policies ? "no policy" : policies.error().message());
  }

  if (next.id_scope == current_.id_scope && next.policies == current_.policies) return false;
  if (next.id_scope != current_.id_scope) {
    spdlog::info("settings: ID scope changed in the store from {} to {}", current_.id_scope,
                 next.id_scope);
  }
  if (next.policies != current_.policies) {
    spdlog::info("settings: service access policies changed in the store ({} now)",
                 next.policies.size());
  }
  current_ = std::move(next);
  on_change_(current_);
  return true;
}

void SettingsRefresher::Start(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      try {
        if (auto refreshed = RefreshOnce(); !refreshed) {
          spdlog::warn("settings: re-reading from the store: {}", refreshed.error().message());
        }
      } catch (const std::exception& e) {
        spdlog::error("settings: re-reading from the store: {}", e.what());
      }
      lock.lock();
    }
  });
}

}  // namespace devid::server
