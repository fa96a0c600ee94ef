#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "base/clock.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::gateway {

// RegistryCacheOptions bounds RegistryCache.
struct RegistryCacheOptions {
  // max_entries caps the cached lookups (registrations, enrollments and groups together); the
  // least recently used is dropped first. 0 turns caching off.
  size_t max_entries = 10000;
  // ttl is how long a lookup is reused. It bounds how long a change in the store (a disabled
  // group, a deleted registration) can go unseen by the gateway. 0 turns caching off.
  std::chrono::milliseconds ttl{2000};
};

// RegistryCache is the gateway's read path to the registry: the three lookups admission needs,
// each answer (a row, or kNotFound) reused for options.ttl, at most options.max_entries of them.
// Other failures are never cached. Answers are copies; the cache holds enrollment keys in memory
// as long as the entries live.
//
// Thread-safe. registry and clock must outlive it.
class RegistryCache {
 public:
  RegistryCache(registry::Registry& registry, const Clock& clock, RegistryCacheOptions options);

  // GetRegistration, GetEnrollment and GetEnrollmentGroup fail as Registry's do.
  Result<registry::Registration> GetRegistration(std::string_view registration_id);
  Result<registry::Enrollment> GetEnrollment(std::string_view registration_id);
  Result<registry::EnrollmentGroup> GetEnrollmentGroup(std::string_view group_id);

  // size is the number of cached answers.
  size_t size() const;

  // store is the registry behind the cache, for reads that must never be stale (revocation).
  registry::Registry& store() const { return registry_; }

 private:
  using Value =
      std::variant<Error, registry::Registration, registry::Enrollment, registry::EnrollmentGroup>;
  struct Entry {
    Value value;
    std::chrono::system_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };

  template <typename T, typename Load>
  Result<T> Lookup(char kind, std::string_view id, Load load);

  registry::Registry& registry_;
  const Clock& clock_;
  const RegistryCacheOptions options_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devid::gateway
