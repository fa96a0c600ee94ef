#include "gateway/session_monitor.h"

#include <algorithm>
#include <utility>

namespace devid::gateway {

SessionMonitor::SessionMonitor(const Clock& clock, SessionMonitorOptions options, Check check)
    : clock_(clock), options_(options), check_(std::move(check)) {}

void SessionMonitor::Add(const void* session, AdmittedDevice device) {
  sessions_.insert_or_assign(session, std::move(device));
}

void SessionMonitor::Remove(const void* session) { sessions_.erase(session); }

const AdmittedDevice* SessionMonitor::Find(const void* session) const {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::vector<Expired> SessionMonitor::Sweep() {
  std::vector<Expired> expired;
  auto now = clock_.Now();
  if (now < next_sweep_) return expired;
  next_sweep_ = now + options_.interval;
  // Round robin from after the cursor, wrapping once, so a batch smaller than the sessions still
  // reaches every session in turn.
  size_t budget = std::min(options_.batch, sessions_.size());
  auto it = sessions_.upper_bound(cursor_);
  while (budget-- > 0) {
    if (it == sessions_.end()) it = sessions_.begin();
    cursor_ = it->first;
    Status kept = check_(it->second);
    if (kept) {
      ++it;
      continue;
    }
    expired.push_back({it->second.device_id, kept.error()});
    it = sessions_.erase(it);
  }
  return expired;
}

}  // namespace devid::gateway
