// The server's TLS identity from its CA: issued on first use, reused while it is good, and
// reissued when it stops being so.

#include "server/server_tls.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <filesystem>

#include "base/clock.h"
#include "base/random.h"
#include "ca/testing/mini_ca.h"

namespace devid::server {
namespace {

class ServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("devid-server-tls-" + std::to_string(::getpid()) + "-" + random_.Hex(4));
    auto dir = DataDir::Prepare(root_.string());
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    auto authority = ca::testing::MakeTestCa(clock_, random_);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  ServerTls Load(const ca::Authority& authority) {
    auto tls = LoadOrIssueServerTls(config_, *dir_, authority, clock_);
    EXPECT_TRUE(tls) << tls.error().message();
    return tls ? std::move(*tls) : ServerTls{};
  }

  FakeClock clock_{std::chrono::system_clock::from_time_t(1795700000)};
  SecureRandom random_;
  std::filesystem::path root_;
  std::optional<DataDir> dir_;
  std::unique_ptr<ca::Authority> authority_;
  Config config_;
};

TEST_F(ServerTlsTest, IssuesOnce_ThenReusesWhileGood) {
  ServerTls first = Load(*authority_);
  ASSERT_TRUE(first.issued.has_value());
  EXPECT_EQ(X509_check_host(first.issued->get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(first.issued->get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(first.trust_bundle_path, root_.string() + "/ca/trust-bundle.pem");
  clock_.Advance(std::chrono::hours(24 * 200));  // past half of a year, not two thirds
  ServerTls again = Load(*authority_);
  EXPECT_FALSE(again.issued.has_value());
  EXPECT_EQ(again.identity.certificate_chain_pem, first.identity.certificate_chain_pem);
}

TEST_F(ServerTlsTest, Reissues_NearExpiry) {
  ServerTls first = Load(*authority_);
  clock_.Advance(std::chrono::hours(24 * 250));  // two thirds of the year have passed
  ServerTls renewed = Load(*authority_);
  ASSERT_TRUE(renewed.issued.has_value());
  EXPECT_NE(renewed.identity.certificate_chain_pem, first.identity.certificate_chain_pem);
}

TEST_F(ServerTlsTest, Reissues_ForAnotherHostName) {
  Load(*authority_);
  config_.server.host_name = "devid.example.com";
  ServerTls renamed = Load(*authority_);
  ASSERT_TRUE(renamed.issued.has_value());
  EXPECT_EQ(X509_check_host(renamed.issued->get(), "devid.example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(renamed.issued->get(), "localhost", 0, 0, nullptr), 1);
  // An IP literal goes into an iPAddress name, not a dNSName.
  config_.server.host_name = "10.1.2.3";
  ServerTls by_ip = Load(*authority_);
  ASSERT_TRUE(by_ip.issued.has_value());
  EXPECT_EQ(X509_check_ip_asc(by_ip.issued->get(), "10.1.2.3", 0), 1);
}

TEST_F(ServerTlsTest, Reissues_WhenTheCaChanged) {
  Load(*authority_);
  auto other = ca::testing::MakeTestCa(clock_, random_);
  ASSERT_TRUE(other);
  ServerTls reissued = Load(**other);
  ASSERT_TRUE(reissued.issued.has_value());
  EXPECT_TRUE((*other)->Verify(*reissued.issued, X509_PURPOSE_SSL_SERVER));
}

TEST_F(ServerTlsTest, ConfiguredFiles_AreUsedAsTheyAre) {
  ServerTls issued = Load(*authority_);
  config_.tls.certificate_file = root_.string() + "/tls/server.pem";
  config_.tls.key_file = root_.string() + "/tls/server.key";
  config_.tls.trust_bundle_file = "/etc/ssl/bundle.pem";
  ServerTls configured = Load(*authority_);
  EXPECT_FALSE(configured.issued.has_value());
  EXPECT_EQ(configured.identity.certificate_chain_pem, issued.identity.certificate_chain_pem);
  EXPECT_EQ(configured.trust_bundle_path, "/etc/ssl/bundle.pem");
  config_.tls.key_file = root_.string() + "/missing.key";
  EXPECT_FALSE(LoadOrIssueServerTls(config_, *dir_, *authority_, clock_).has_value());
}

}  // namespace
}  // namespace devid::server
