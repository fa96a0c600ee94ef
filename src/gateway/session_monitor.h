#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/device_authenticator.h"

namespace devid::gateway {

// SessionMonitorOptions sets how often and how much SessionMonitor re-checks.
struct SessionMonitorOptions {
  // interval is the time between two sweeps.
  std::chrono::milliseconds interval{1000};
  // batch caps the sessions re-checked by one sweep; a sweep continues where the last stopped,
  // so every session is re-checked at least every ceil(sessions / batch) * interval.
  size_t batch = 1000;
};

// Expired is a session SessionMonitor found no longer admissible.
struct Expired {
  std::string client_id;
  Error reason;
};

// SessionMonitor tracks the sessions of admitted devices and re-checks them periodically, so a
// device disabled or deleted in the registry loses its live session. Sessions are keyed by an
// opaque handle (the broker's client) that is only compared, never dereferenced. Memory is one
// entry per live session.
//
// Not thread-safe: the broker calls it from its main thread. clock must outlive it.
class SessionMonitor {
 public:
  // Check decides whether an admitted device may keep its session (DeviceAuthenticator::Recheck).
  using Check = std::function<Status(const AdmittedDevice&)>;

  SessionMonitor(const Clock& clock, SessionMonitorOptions options, Check check);

  // Add tracks session as device's, replacing what session had.
  void Add(const void* session, AdmittedDevice device);
  // Remove stops tracking session; unknown sessions are ignored.
  void Remove(const void* session);
  // Find returns what session was admitted as, or nullptr when it is not tracked. The pointer is
  // valid until the next Add, Remove or Sweep.
  const AdmittedDevice* Find(const void* session) const;

  // Sweep, once interval has passed since the last sweep, re-checks up to batch sessions and
  // returns those that failed (they are no longer tracked; the caller closes them). Otherwise it
  // returns nothing and checks nothing.
  std::vector<Expired> Sweep();

  size_t size() const { return sessions_.size(); }

 private:
  const Clock& clock_;
  const SessionMonitorOptions options_;
  const Check check_;
  std::map<const void*, AdmittedDevice> sessions_;
  const void* cursor_ = nullptr;  // the last session checked; the next sweep starts after it
  std::chrono::system_clock::time_point next_sweep_{};
};

}  // namespace devid::gateway
