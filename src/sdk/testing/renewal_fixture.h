#pragma once

// The part renewal fixtures share, whatever holds the device key: a directory of their own, the
// device's test CA, another CA that a hostile server could issue from, and a FakeReenroller over
// both.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "ca/authority.h"
#include "ca/testing/mini_ca.h"
#include "sdk/testing/fake_reenroller.h"

namespace devid::sdk::testing {

class RenewalFixture : public ::testing::Test {
 protected:
  // SetUpCas makes dir_ (a fresh <temp>/<prefix><random hex>), both CAs and reenroller_.
  void SetUpCas(const std::string& prefix) {
    dir_ = std::filesystem::path(::testing::TempDir()) / (prefix + secure_.Hex(8));
    std::filesystem::create_directories(dir_);
    auto authority = ca::testing::MakeTestCa(clock_, secure_);
    ASSERT_TRUE(authority.has_value()) << authority.error().message();
    authority_ = std::move(*authority);
    auto other = ca::testing::MakeTestCa(clock_, secure_);
    ASSERT_TRUE(other.has_value()) << other.error().message();
    other_ = std::move(*other);
    reenroller_.emplace(*authority_, *other_);
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  FakeClock clock_{std::chrono::system_clock::now()};
  SecureRandom secure_;
  FixedRandom jitter_{0x00};
  std::string dir_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<ca::Authority> other_;
  std::optional<FakeReenroller> reenroller_;
};

}  // namespace devid::sdk::testing
