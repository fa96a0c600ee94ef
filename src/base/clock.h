#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace devid {

// Clock tells the wall-clock time. Everything that checks an expiry or stamps a record takes a
// Clock so tests can control time.
class Clock {
 public:
  virtual ~Clock() = default;
  // Now returns the current UTC time.
  virtual std::chrono::system_clock::time_point Now() const = 0;

  // UnixSeconds returns Now() as seconds since the Unix epoch.
  int64_t UnixSeconds() const;
};

// SystemClock is the real clock.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

// FakeClock is a settable clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point now) : now_(now) {}
  std::chrono::system_clock::time_point Now() const override { return now_; }
  void Set(std::chrono::system_clock::time_point now) { now_ = now; }
  void Advance(std::chrono::system_clock::duration d) { now_ += d; }

 private:
  std::chrono::system_clock::time_point now_;
};

// FormatUtc renders t as RFC 3339 with microseconds and a Z, as DPS does
// ("2026-11-26T14:38:58.872480Z").
std::string FormatUtc(std::chrono::system_clock::time_point t);

}  // namespace devid
