#include "gateway/registry_cache.h"

#include <utility>

namespace devid::gateway {

RegistryCache::RegistryCache(registry::Registry& registry, const Clock& clock,
                             RegistryCacheOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

size_t RegistryCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

template <typename T, typename Load>
Result<T> RegistryCache::Lookup(char kind, std::string_view id, Load load) {
  if (options_.max_entries == 0 || options_.ttl.count() <= 0) return load();
  std::string key = std::string(1, kind) + std::string(id);
  auto now = clock_.Now();
  {
    std::lock_guard lock(mu_);
    auto found = entries_.find(key);
    if (found != entries_.end()) {
      if (now < found->second.expires) {
        lru_.splice(lru_.begin(), lru_, found->second.lru);
        if (const Error* error = std::get_if<Error>(&found->second.value)) {
          return std::unexpected(*error);
        }
        return std::get<T>(found->second.value);
      }
      lru_.erase(found->second.lru);
      entries_.erase(found);
    }
  }
  // The registry is read outside the lock; two concurrent misses both read, the later one wins.
  Result<T> loaded = load();
  // Only settled answers are reused: a transient failure must not deny devices for a whole TTL.
  if (!loaded && loaded.error().code() != ErrorCode::kNotFound) return loaded;
  std::lock_guard lock(mu_);
  auto found = entries_.find(key);
  if (found != entries_.end()) {
    lru_.erase(found->second.lru);
    entries_.erase(found);
  }
  while (entries_.size() >= options_.max_entries) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  Value value = loaded ? Value(std::in_place_type<T>, *loaded) : Value(loaded.error());
  entries_.emplace(std::move(key), Entry{std::move(value), now + options_.ttl, lru_.begin()});
  return loaded;
}

Result<registry::Registration> RegistryCache::GetRegistration(std::string_view registration_id) {
  return Lookup<registry::Registration>('r', registration_id,
                                        [&] { return registry_.GetRegistration(registration_id); });
}

Result<registry::Enrollment> RegistryCache::GetEnrollment(std::string_view registration_id) {
  return Lookup<registry::Enrollment>('e', registration_id,
                                      [&] { return registry_.GetEnrollment(registration_id); });
}

Result<registry::EnrollmentGroup> RegistryCache::GetEnrollmentGroup(std::string_view group_id) {
  return Lookup<registry::EnrollmentGroup>('g', group_id,
                                           [&] { return registry_.GetEnrollmentGroup(group_id); });
}

}  // namespace devid::gateway
