#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace devid::registry {

// Actor is who asked for a change: "service:<policy>", "device:<registrationId>" or "cli".
struct Actor {
  std::string name;
};

// AuditRecord is one appended entry in the audit log, written in the same transaction as the
// change it records.
struct AuditRecord {
  int64_t sequence = 0;  // assigned by the store, strictly increasing
  std::chrono::system_clock::time_point time;
  std::string actor;
  std::string action;  // "enrollment.create", "registration.assign", ...
  std::string object;  // the ID acted on
  std::string outcome; // "success" or a failure description
  // chain_hash links the record to the one before it (AuditChainHash in audit_chain.h); set by
  // the store at append time, "" on records written before the chain existed.
  std::string chain_hash;
};

}  // namespace devid::registry
