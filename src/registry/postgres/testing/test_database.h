#pragma once

// Fresh PostgreSQL databases for tests, on the server named by the environment variable
// DEVID_TEST_POSTGRES_URL (a superuser's postgresql:// URL; scripts/test.sh starts a throwaway
// cluster and sets it). Header-only: tests include it, the server never does.

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "base/random.h"
#include "base/result.h"
#include "registry/postgres/connection.h"

namespace devid::registry::postgres::testing {

// kTestUrlVariable names the environment variable holding the test server's URL.
inline constexpr char kTestUrlVariable[] = "DEVID_TEST_POSTGRES_URL";

// TestServerUrl returns the test server's URL, or "" when none is configured.
inline std::string TestServerUrl() {
  const char* url = std::getenv(kTestUrlVariable);
  return url != nullptr ? url : "";
}

// MissingServerIsFailure tells whether a test without a server must fail rather than skip: in CI
// (CI=true) a missing PostgreSQL is a broken setup, never a reason to skip.
inline bool MissingServerIsFailure() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// MissingServerMessage says why a PostgreSQL test cannot run and how to fix it.
inline std::string MissingServerMessage() {
  return std::string(kTestUrlVariable) +
         " is not set: run the tests through scripts/test.sh, or start a cluster with "
         "scripts/postgres-test-cluster.sh and export its URL";
}

// WithDatabase returns url with its database name replaced by name (query parameters kept).
inline std::string WithDatabase(std::string_view url, std::string_view name) {
  size_t authority = url.find("://");
  size_t start = authority == std::string_view::npos ? 0 : authority + 3;
  size_t query = url.find('?', start);
  std::string_view base = url.substr(0, query);
  std::string_view params = query == std::string_view::npos ? "" : url.substr(query);
  size_t slash = base.find('/', start);
  if (slash != std::string_view::npos) base = base.substr(0, slash);
  return std::string(base) + "/" + std::string(name) + std::string(params);
}

// TestDatabase is a database created empty on the test server and dropped (with any connections
// still open to it) when the object is destroyed. Move-only.
class TestDatabase {
 public:
  // Create makes a database named devid_test_<random hex>. It fails with kUnavailable when no
  // server is configured or reachable.
  static Result<TestDatabase> Create() {
    std::string server = TestServerUrl();
    if (server.empty()) return std::unexpected(Unavailable(MissingServerMessage()));
    SecureRandom random;
    std::string name = "devid_test_" + random.Hex(8);
    DEVID_ASSIGN_OR_RETURN(Connection admin, Connection::Open(server));
    DEVID_TRY(admin.Exec("CREATE DATABASE " + name));
    return TestDatabase(server, name);
  }

  TestDatabase(TestDatabase&& other) noexcept
      : server_(std::move(other.server_)), name_(std::exchange(other.name_, "")) {}
  TestDatabase& operator=(TestDatabase&&) = delete;
  ~TestDatabase() {
    if (name_.empty()) return;
    if (auto admin = Connection::Open(server_)) {
      (void)admin->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    }
  }

  // url is the postgresql:// URL of this database.
  std::string url() const { return WithDatabase(server_, name_); }
  const std::string& name() const { return name_; }

 private:
  TestDatabase(std::string server, std::string name)
      : server_(std::move(server)), name_(std::move(name)) {}

  std::string server_;
  std::string name_;
};

}  // namespace devid::registry::postgres::testing

// DEVID_CREATE_TEST_DATABASE(db) is a fixture's SetUp step for tests that need PostgreSQL: without
// a test server it skips the test (fails it in CI, see MissingServerIsFailure), else it creates a
// fresh database into db, a std::optional<TestDatabase>, or fails the test. A macro because the
// skip and the failure must return from SetUp itself.
#define DEVID_CREATE_TEST_DATABASE(db)                                                      \
  do {                                                                                      \
    namespace pgt = ::devid::registry::postgres::testing;                                   \
    if (pgt::TestServerUrl().empty()) {                                                     \
      if (pgt::MissingServerIsFailure()) FAIL() << pgt::MissingServerMessage();             \
      GTEST_SKIP() << pgt::MissingServerMessage();                                          \
    }                                                                                       \
    auto created = pgt::TestDatabase::Create();                                             \
    ASSERT_TRUE(created.has_value()) << created.error().message();                          \
    (db).emplace(std::move(*created));                                                      \
  } while (false)

