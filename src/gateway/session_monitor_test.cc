#include "gateway/session_monitor.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "base/clock.h"

namespace devid::gateway {
namespace {

using std::chrono::milliseconds;

class SessionMonitorTest : public ::testing::Test {
 protected:
  SessionMonitor Monitor(size_t batch) {
    return SessionMonitor(
        clock_, {.interval = milliseconds(1000), .batch = batch},
        [this](const AdmittedDevice& device) -> Status {
          checked_.push_back(device.device_id);
          if (disabled_.contains(device.device_id)) {
            return std::unexpected(Unauthenticated(device.device_id + " disabled"));
          }
          return Ok();
        });
  }

  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  std::vector<std::string> checked_;
  std::set<std::string> disabled_;
  int handles_[4] = {};
};

TEST_F(SessionMonitorTest, Sweeps_OncePerInterval) {
  SessionMonitor monitor = Monitor(10);
  monitor.Add(&handles_[0], {"dev-1", "hub", 0});
  EXPECT_TRUE(monitor.Sweep().empty());
  EXPECT_EQ(checked_.size(), 1u);
  clock_.Advance(milliseconds(999));
  EXPECT_TRUE(monitor.Sweep().empty());
  EXPECT_EQ(checked_.size(), 1u);
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(monitor.Sweep().empty());
  EXPECT_EQ(checked_.size(), 2u);
}

TEST_F(SessionMonitorTest, Returns_DisabledSessionsOnceAndStopsTrackingThem) {
  SessionMonitor monitor = Monitor(10);
  monitor.Add(&handles_[0], {"dev-1", "hub", 0});
  monitor.Add(&handles_[1], {"dev-2", "hub", 0});
  disabled_.insert("dev-2");
  auto expired = monitor.Sweep();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].client_id, "dev-2");
  EXPECT_EQ(expired[0].reason.message(), "dev-2 disabled");
  EXPECT_EQ(monitor.size(), 1u);
  clock_.Advance(milliseconds(1000));
  EXPECT_TRUE(monitor.Sweep().empty());
}

TEST_F(SessionMonitorTest, Batches_RoundRobinAcrossSweeps) {
  SessionMonitor monitor = Monitor(3);
  for (int i = 0; i < 4; ++i) monitor.Add(&handles_[i], {"dev-" + std::to_string(i), "hub", 0});
  monitor.Sweep();
  clock_.Advance(milliseconds(1000));
  monitor.Sweep();
  ASSERT_EQ(checked_.size(), 6u);
  // Every session was checked within two sweeps (ceil(4 / 3) = 2).
  EXPECT_EQ(std::set<std::string>(checked_.begin(), checked_.end()).size(), 4u);
}

TEST_F(SessionMonitorTest, Forgets_RemovedSessions) {
  SessionMonitor monitor = Monitor(10);
  monitor.Add(&handles_[0], {"dev-1", "hub", 0});
  monitor.Remove(&handles_[0]);
  monitor.Remove(&handles_[1]);  // unknown: ignored
  disabled_.insert("dev-1");
  EXPECT_TRUE(monitor.Sweep().empty());
  EXPECT_TRUE(checked_.empty());
}

TEST_F(SessionMonitorTest, Finds_WhatASessionWasAdmittedAs) {
  SessionMonitor monitor = Monitor(10);
  monitor.Add(&handles_[0], {.device_id = "$service-1", .back_end_policy = "owner"});
  ASSERT_NE(monitor.Find(&handles_[0]), nullptr);
  EXPECT_EQ(monitor.Find(&handles_[0])->back_end_policy, "owner");
  EXPECT_EQ(monitor.Find(&handles_[1]), nullptr);
  monitor.Remove(&handles_[0]);
  EXPECT_EQ(monitor.Find(&handles_[0]), nullptr);
}

}  // namespace
}  // namespace devid::gateway
