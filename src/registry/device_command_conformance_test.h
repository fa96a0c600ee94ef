#pragma once

// The server-signed command part of the Registry conformance suite (registry_conformance_test.h):
// sequence numbers per device, 1, 2, 3, ..., unique under concurrent signers, only for registered
// devices, each with its audit record.
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, DeviceCommandConformanceTest,
//                                  ::testing::Types<SqliteRegistryFactory>);

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "registry/registry_conformance_test.h"

namespace devid::registry::conformance {

template <typename Factory>
class DeviceCommandConformanceTest : public RegistryConformanceTest<Factory> {
 protected:
  DeviceCommand MakeCommand(const std::string& device_id) {
    DeviceCommand c;
    c.device_id = device_id;
    c.sequence = 99;  // ignored: the store assigns it
    c.expires = this->clock_.Now() + std::chrono::minutes(5);
    c.body_sha256 = "5d41402abc4b2a76b9719d911017c592";
    return c;
  }

  DeviceCommand AddOrDie(const std::string& device_id) {
    auto added = this->registry().AddDeviceCommand(MakeCommand(device_id), this->actor_);
    EXPECT_TRUE(added.has_value()) << added.error().message();
    return added.value_or(DeviceCommand{});
  }
};

TYPED_TEST_SUITE_P(DeviceCommandConformanceTest);

TYPED_TEST_P(DeviceCommandConformanceTest, Numbers_CommandsPerDeviceFromOne) {
  this->SaveOrDie(MakeRegistration("dev-a"));
  this->SaveOrDie(MakeRegistration("dev-b"));
  size_t audit_before = this->AllAudit().size();
  EXPECT_EQ(this->AddOrDie("dev-a").sequence, 1);
  EXPECT_EQ(this->AddOrDie("dev-a").sequence, 2);
  DeviceCommand b = this->AddOrDie("dev-b");
  EXPECT_EQ(b.sequence, 1);
  EXPECT_EQ(b.device_id, "dev-b");
  EXPECT_EQ(Micros(b.expires), Micros(this->MakeCommand("dev-b").expires));
  this->Reopen();
  EXPECT_EQ(this->AddOrDie("dev-a").sequence, 3);
  std::vector<AuditRecord> log = this->AllAudit();
  ASSERT_EQ(log.size(), audit_before + 4);
  EXPECT_EQ(log.back().action, kAuditCommandSign);
  EXPECT_EQ(log.back().object, "dev-a");
  EXPECT_EQ(log.back().outcome, "success; sequence 3");
  EXPECT_EQ(log.back().actor, this->actor_.name);
}

TYPED_TEST_P(DeviceCommandConformanceTest, Rejects_CommandForUnregisteredDevice) {
  size_t audit_before = this->AllAudit().size();
  auto added = this->registry().AddDeviceCommand(this->MakeCommand("nobody"), this->actor_);
  ASSERT_FALSE(added.has_value());
  EXPECT_EQ(added.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(added.error().message(), HasSubstr("nobody"));
  EXPECT_EQ(this->AllAudit().size(), audit_before);
  // Nothing was stored: once registered, the device's first command is still number 1.
  this->SaveOrDie(MakeRegistration("nobody"));
  EXPECT_EQ(this->AddOrDie("nobody").sequence, 1);
}

TYPED_TEST_P(DeviceCommandConformanceTest, Rejects_IncompleteOrExpiredCommand) {
  this->SaveOrDie(MakeRegistration("dev-a"));
  size_t audit_before = this->AllAudit().size();
  DeviceCommand no_device = this->MakeCommand("");
  DeviceCommand no_hash = this->MakeCommand("dev-a");
  no_hash.body_sha256.clear();
  DeviceCommand expired = this->MakeCommand("dev-a");
  expired.expires = this->clock_.Now();
  for (const DeviceCommand& c : {no_device, no_hash, expired}) {
    auto added = this->registry().AddDeviceCommand(c, this->actor_);
    ASSERT_FALSE(added.has_value());
    EXPECT_EQ(added.error().code(), ErrorCode::kInvalidArgument) << added.error().message();
  }
  EXPECT_EQ(this->AllAudit().size(), audit_before);
  EXPECT_EQ(this->AddOrDie("dev-a").sequence, 1);
}

TYPED_TEST_P(DeviceCommandConformanceTest, Assigns_DistinctSequencesToConcurrentSigners) {
  this->SaveOrDie(MakeRegistration("dev-a"));
  constexpr int kThreads = 8;
  constexpr int kEach = 5;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto added = this->registry().AddDeviceCommand(this->MakeCommand("dev-a"), this->actor_);
        EXPECT_TRUE(added.has_value()) << added.error().message();
        if (added) got[t].push_back(added->sequence);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<int64_t> all;
  for (const auto& list : got) {
    // Each signer sees its own numbers grow.
    EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
    all.insert(list.begin(), list.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kEach);
}

REGISTER_TYPED_TEST_SUITE_P(DeviceCommandConformanceTest, Numbers_CommandsPerDeviceFromOne,
                            Rejects_CommandForUnregisteredDevice,
                            Rejects_IncompleteOrExpiredCommand,
                            Assigns_DistinctSequencesToConcurrentSigners);

}  // namespace devid::registry::conformance
