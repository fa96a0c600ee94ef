#pragma once

// A fixture for SDK client tests: a real HttpsServer on localhost whose certificate comes from a
// test CA the client can trust.

#include <gtest/gtest.h>

#include <memory>

#include "api/http.h"
#include "base/clock.h"
#include "base/random.h"
#include "ca/authority.h"
#include "ca/profile.h"
#include "ca/testing/mini_ca.h"
#include "ca/tls_identity.h"
#include "net/https_server.h"

namespace devid::sdk::testing {

// LocalhostServerTest makes the test CA and the server's identity once per suite; each test
// starts server_ with StartServer and the fixture stops it before the test's members go.
class LocalhostServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static SystemClock clock;
    static SecureRandom random;
    auto authority = ca::testing::MakeTestCa(clock, random);
    ASSERT_TRUE(authority) << authority.error().message();
    authority_ = std::move(*authority);
    auto identity = ca::IssueTlsIdentity(*authority_, ca::kServerProfile,
                                         {.common_name = "localhost", .dns_names = {"localhost"}});
    ASSERT_TRUE(identity) << identity.error().message();
    identity_ = std::move(identity->identity);
  }
  static void TearDownTestSuite() { authority_.reset(); }

  // TearDown stops the server while the handler, a member of the derived fixture, still lives.
  void TearDown() override { server_.reset(); }

  // StartServer serves handler on an ephemeral port and asks clients for a certificate.
  void StartServer(api::Handler& handler) {
    net::ServerOptions options;
    options.io_threads = 1;
    options.handler_threads = 1;
    options.request_client_certificate = true;
    auto server = net::HttpsServer::Start(options, identity_, handler);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  static inline std::unique_ptr<ca::Authority> authority_;
  static inline ca::TlsIdentity identity_;
  std::unique_ptr<net::HttpsServer> server_;
};

}  // namespace devid::sdk::testing
