// Two `devid serve` nodes on one PostgreSQL database, as a scale-out deployment runs them behind
// a load balancer: concurrent registrations of the same devices through both, changes made on one
// node seen on the other at once (there is no cache in a node), one node killed mid-load, and
// settings changed in the store (service keys, ID scope) taken up by both nodes within the
// documented bound.
//
// Each node has its own data dir and so its own development CA and TLS certificate: clients use
// each node's trust bundle. MultiNodeSharedCaTest instead points both at one CA directory
// ([ca] directory), so both issue as one CA. The ID scope comes from the config (or, in
// MultiNodeSettingsTest, from the store) and the service policies from the shared store, where the first node to start
// put them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "dps_client.h"
#include "est_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/postgres/connection.h"
#include "registry/postgres/testing/test_database.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using registry::postgres::testing::TestDatabase;
using ::testing::HasSubstr;

constexpr char kGroupKey[] =
    "pOjbJ3pm0pO3HwH7sVGpvx3o5QXsbpZkRNOD7cU2+6vK9QlPQ1m3a7e3Y1w8dpGzqgJQk4YlWqJe0iA9m5bK0w==";
constexpr char kIdScope[] = "0ne000C0FFE";
constexpr int kDevices = 1000;

std::string DeviceKey(const std::string& reg_id) {
  return *pki::DeriveSymmetricKey(kGroupKey, reg_id);
}

// StoredRegistration is one row of the shared registrations table.
struct StoredRegistration {
  std::string hub;
  std::string status;
  int64_t created_us = 0;
};

class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
    StartNodes("", std::string("id_scope = \"") + kIdScope + "\"\n");
  }

  // StartNodes starts A, then B, on the test database with extra [store] and [device] settings,
  // and creates the group "fleet" through A.
  void StartNodes(const std::string& store_toml, const std::string& device_toml) {
    ServerProcessOptions options;
    options.config_toml = "[store]\nurl = \"" + db_->url() + "\"\n" + store_toml + "[device]\n" +
                          device_toml + "hubs = [\"hub-1.example\", \"hub-2.example\"]\n";
    if (share_ca_) {
      // One CA for both nodes: [ca] directory names the same directory (docs/scale-out.md); A
      // makes the CA there on its first start and B loads it.
      char pattern[] = "/tmp/devid-shared-ca-XXXXXX";
      ASSERT_NE(::mkdtemp(pattern), nullptr);
      shared_ca_dir_ = pattern;
      options.config_toml += "[ca]\ndirectory = \"" + shared_ca_dir_ + "/authority\"\n";
    }
    // A starts first and puts the service policies in the store; B reads them from there.
    auto a = ServerProcess::Start(options);
    ASSERT_TRUE(a.has_value()) << a.error().message();
    node_a_.emplace(std::move(*a));
    auto b = ServerProcess::Start(options);
    ASSERT_TRUE(b.has_value()) << b.error().message();
    node_b_.emplace(std::move(*b));
    ASSERT_EQ(node_a_->service_connection_string(), node_b_->service_connection_string());

    DpsClient client(*node_a_);
    ASSERT_TRUE(client.connected());
    auto group = client.Service(
        "PUT", "/enrollmentGroups/fleet",
        {{"enrollmentGroupId", "fleet"},
         {"attestation",
          {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", kGroupKey}}}}}});
    ASSERT_TRUE(group) << group.error().message();
    ASSERT_EQ(group->status, 200) << group->body;
  }

  // Stored reads the registrations table directly.
  std::map<std::string, StoredRegistration> Stored() {
    std::map<std::string, StoredRegistration> out;
    auto db = registry::postgres::Connection::Open(db_->url());
    EXPECT_TRUE(db.has_value()) << db.error().message();
    if (!db) return out;
    auto rows =
        db->Run("SELECT registration_id, assigned_hub, status, created_us FROM registrations", {});
    EXPECT_TRUE(rows.has_value()) << rows.error().message();
    if (!rows) return out;
    for (int i = 0; i < rows->size(); ++i) {
      out[rows->Text(i, 0)] = {rows->Text(i, 1), rows->Text(i, 2), rows->Int(i, 3)};
    }
    return out;
  }

  // CountAudit counts the audit records of action ("" = all of them).
  int64_t CountAudit(const std::string& action) {
    auto db = registry::postgres::Connection::Open(db_->url());
    if (!db) return -1;
    auto rows = db->Run("SELECT COUNT(*) FROM audit_log WHERE $1 = '' OR action = $1", {action});
    return rows && !rows->empty() ? rows->Int(0, 0) : -1;
  }

  // Setting reads a setting's stored value ("" when unset or unreadable).
  std::string Setting(const std::string& name) {
    auto db = registry::postgres::Connection::Open(db_->url());
    if (!db) return "";
    auto rows = db->Run("SELECT value FROM settings WHERE name = $1", {name});
    return rows && !rows->empty() ? rows->Text(0, 0) : "";
  }

  // StoreSetting changes a setting in the store directly, as an operator's SQL would.
  void StoreSetting(const std::string& name, const std::string& value) {
    auto db = registry::postgres::Connection::Open(db_->url());
    ASSERT_TRUE(db.has_value()) << db.error().message();
    auto updated = db->Run("UPDATE settings SET value = $2 WHERE name = $1", {name, value});
    ASSERT_TRUE(updated.has_value()) << updated.error().message();
  }

  // VerifyAuditChain runs `devid audit verify` on the shared store and checks it reports an
  // intact chain of at least min_records records.
  void VerifyAuditChain(int64_t min_records) {
    CommandResult verified = RunCommand({DEVID_BINARY, "audit", "verify", "--store", db_->url()});
    ASSERT_EQ(verified.exit_code, 0) << Describe(verified);
    EXPECT_THAT(verified.out, HasSubstr("audit log verified: "));
    int64_t records = std::stoll(verified.out.substr(verified.out.find(": ") + 2));
    EXPECT_GE(records, min_records) << verified.out;
    EXPECT_EQ(records, CountAudit("")) << verified.out;
  }

  bool share_ca_ = false;
  std::string shared_ca_dir_;  // with share_ca_: the CA directory both nodes name
  std::optional<TestDatabase> db_;
  // Declared after db_, so the nodes stop before the database is dropped.
  std::optional<ServerProcess> node_a_;
  std::optional<ServerProcess> node_b_;
};

TEST_F(MultiNodeTest, Registers_SameDevicesThroughBothNodesOnceEach) {
  std::vector<std::string> ids;
  for (int i = 0; i < kDevices; ++i) ids.push_back("dev-" + std::to_string(i));

  // Every device registers through both nodes at once: node A's threads walk the list forwards,
  // node B's backwards.
  constexpr int kThreadsPerNode = 8;
  std::atomic<int> accepted{0}, refused{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node, t] {
        DpsClient client(node == 0 ? *node_a_ : *node_b_);
        if (!client.connected()) {
          ++refused;
          return;
        }
        for (int k = t; k < kDevices; k += kThreadsPerNode) {
          const std::string& id = ids[node == 0 ? k : kDevices - 1 - k];
          auto r = client.Register(id, DeviceKey(id));
          if (r && r->status == 202) {
            ++accepted;
          } else {
            ++refused;
            std::lock_guard lock(mu);
            failures.push_back(
                id + ": " + (r ? std::to_string(r->status) + " " + r->body : r.error().message()));
          }
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(refused.load(), 0) << (failures.empty() ? "" : failures.front());
  EXPECT_EQ(accepted.load(), 2 * kDevices);

  std::map<std::string, StoredRegistration> first = Stored();
  ASSERT_EQ(first.size(), static_cast<size_t>(kDevices)) << "exactly one registration each";
  for (const std::string& id : ids) {
    ASSERT_EQ(first.count(id), 1u) << id;
    EXPECT_EQ(first[id].status, "assigned") << id;
    EXPECT_THAT(first[id].hub, ::testing::AnyOf("hub-1.example", "hub-2.example")) << id;
  }
  EXPECT_EQ(CountAudit("registration.assign"), 2 * kDevices);

  // A second registration through either node is idempotent: same hub, same created time; and
  // the operation can be polled through the other node.
  std::atomic<int> mismatches{0};
  threads.clear();
  for (int t = 0; t < kThreadsPerNode; ++t) {
    threads.emplace_back([&, t] {
      DpsClient a(*node_a_);
      DpsClient b(*node_b_);
      for (int k = t; k < kDevices; k += kThreadsPerNode) {
        const std::string& id = ids[k];
        DpsClient& registrar = k % 2 == 0 ? a : b;
        DpsClient& poller = k % 2 == 0 ? b : a;
        std::string key = DeviceKey(id);
        auto r = registrar.Register(id, key);
        if (!r || r->status != 202) {
          ++mismatches;
          continue;
        }
        std::string op = json::parse(r->body).value("operationId", "");
        auto polled = poller.Poll(id, key, op);
        if (!polled || polled->status != 200) {
          ++mismatches;
          continue;
        }
        json state = json::parse(polled->body)["registrationState"];
        const StoredRegistration& before = first.at(id);
        if (state.value("assignedHub", "") != before.hub ||
            state.value("createdDateTimeUtc", "") !=
                FormatUtc(std::chrono::system_clock::time_point(
                    std::chrono::microseconds(before.created_us)))) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);

  std::map<std::string, StoredRegistration> second = Stored();
  ASSERT_EQ(second.size(), static_cast<size_t>(kDevices));
  for (const std::string& id : ids) {
    EXPECT_EQ(second[id].hub, first[id].hub) << id;
    EXPECT_EQ(second[id].created_us, first[id].created_us) << id;
  }
  // Both nodes appended to one audit log at once; it is still one unbroken hash chain.
  VerifyAuditChain(3 * kDevices);
}

TEST_F(MultiNodeTest, Refuses_OnNodeBAnEnrollmentJustDisabledOnNodeA) {
  DpsClient a(*node_a_);
  DpsClient b(*node_b_);
  const std::string key = ossl::Base64Encode(std::string_view("solo-1 device key, 32 bytes long"));
  json enrollment = {
      {"registrationId", "solo-1"},
      {"attestation", {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", key}}}}},
      {"provisioningStatus", "enabled"}};
  auto created = a.Service("PUT", "/enrollments/solo-1", enrollment);
  ASSERT_TRUE(created) << created.error().message();
  ASSERT_EQ(created->status, 200) << created->body;
  auto first = b.Register("solo-1", key);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_EQ(first->status, 202) << first->body;

  // The bound is 0 s: a node keeps no cache, so B's next request reads what A committed.
  enrollment["provisioningStatus"] = "disabled";
  std::string etag = json::parse(created->body).value("etag", "");
  auto disabled = a.Service("PUT", "/enrollments/solo-1", enrollment, {{"if-match", etag}});
  ASSERT_TRUE(disabled) << disabled.error().message();
  ASSERT_EQ(disabled->status, 200) << disabled->body;
  auto refused = b.Register("solo-1", key);
  ASSERT_TRUE(refused) << refused.error().message();
  EXPECT_EQ(refused->status, 401) << refused->body;
  EXPECT_THAT(refused->body, HasSubstr("401004"));
  EXPECT_THAT(refused->body, HasSubstr("disabled"));
}

TEST_F(MultiNodeTest, CarriesOn_WhenOneNodeIsKilledMidLoad) {
  constexpr int kThreadsPerNode = 6;
  constexpr int kPerThread = 80;
  std::atomic<int> acknowledged_by_b{0};
  std::mutex mu;
  std::set<std::string> acknowledged;  // every device some node answered 202
  std::vector<std::string> problems;
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node, t] {
        std::optional<DpsClient> client(std::in_place, node == 0 ? *node_a_ : *node_b_);
        std::optional<DpsClient> fallback;  // B's devices move to A once B is gone
        for (int i = 0; i < kPerThread; ++i) {
          std::string id =
              "load-" + std::to_string(node) + "-" + std::to_string(t) + "-" + std::to_string(i);
          std::string key = DeviceKey(id);
          Result<sdk::HttpResponse> r = std::unexpected(Unavailable("not sent"));
          if (!fallback && client->connected()) r = client->Register(id, key);
          if (!r && node == 1) {
            // The node died under us: like a load balancer, retry on the survivor.
            if (!fallback) fallback.emplace(*node_a_);
            r = fallback->Register(id, key);
          }
          std::lock_guard lock(mu);
          if (r && r->status == 202) {
            acknowledged.insert(id);
            if (node == 1 && !fallback) ++acknowledged_by_b;
          } else {
            problems.push_back(
                id + ": " + (r ? std::to_string(r->status) + " " + r->body : r.error().message()));
          }
        }
      });
    }
  }
  // Kill B once it has acknowledged a good share of its load.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acknowledged_by_b.load() < kThreadsPerNode * kPerThread / 4 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GT(acknowledged_by_b.load(), 0) << "B served nothing before it was killed";
  ASSERT_EQ(::kill(node_b_->pid(), SIGKILL), 0);
  for (auto& thread : threads) thread.join();
  auto code = node_b_->Stop();
  ASSERT_TRUE(code.has_value()) << code.error().message();
  EXPECT_EQ(*code, 128 + SIGKILL);

  EXPECT_TRUE(problems.empty()) << problems.size() << " failed, first: " << problems.front();
  EXPECT_EQ(acknowledged.size(), static_cast<size_t>(2 * kThreadsPerNode * kPerThread));
  EXPECT_LT(acknowledged_by_b.load(), kThreadsPerNode * kPerThread) << "B died after its load";

  // No acknowledged registration was lost and none is partial: every row is whole.
  std::map<std::string, StoredRegistration> stored = Stored();
  for (const std::string& id : acknowledged) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << id << " was acknowledged but is not stored";
    EXPECT_EQ(it->second.status, "assigned") << id;
    EXPECT_FALSE(it->second.hub.empty()) << id;
  }
  for (const auto& [id, row] : stored) {
    EXPECT_EQ(row.status, "assigned") << id;
    EXPECT_FALSE(row.hub.empty()) << id;
  }

  // The survivor still serves devices and operators.
  DpsClient a(*node_a_);
  auto state = a.Service("GET", "/registrations/load-1-0-0");
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_EQ(state->status, 200) << state->body;
}

// MultiNodeSettingsTest runs both nodes with the ID scope taken from the store and the settings
// re-read every second, the shortest refresh interval.
TEST_F(MultiNodeTest, Numbers_CommandsSignedThroughBothNodesWithoutDuplicates) {
  DpsClient registrar(*node_a_);
  ASSERT_TRUE(registrar.connected());
  auto registered = registrar.Register("cmd-1", DeviceKey("cmd-1"));
  ASSERT_TRUE(registered) << registered.error().message();
  ASSERT_EQ(registered->status, 202) << registered->body;
  constexpr int kThreadsPerNode = 2;
  constexpr int kEach = 10;
  std::mutex mu;
  std::vector<int64_t> sequences;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node] {
        DpsClient client(node == 0 ? *node_a_ : *node_b_);
        for (int i = 0; i < kEach; ++i) {
          auto sent = client.Service("POST", "/devices/cmd-1/commands", json{{"n", i}});
          std::lock_guard lock(mu);
          if (sent && sent->status == 201) {
            sequences.push_back(json::parse(sent->body)["sequence"].get<int64_t>());
          } else {
            failures.push_back(sent ? std::to_string(sent->status) + " " + sent->body
                                    : sent.error().message());
          }
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(failures.empty()) << failures.front();
  std::set<int64_t> distinct(sequences.begin(), sequences.end());
  constexpr int kTotal = 2 * kThreadsPerNode * kEach;
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kTotal)) << "a sequence number was reused";
  EXPECT_EQ(*distinct.begin(), 1);
  EXPECT_EQ(*distinct.rbegin(), kTotal);
  EXPECT_EQ(CountAudit("command.sign"), kTotal);
}

class MultiNodeSettingsTest : public MultiNodeTest {
 protected:
  static constexpr auto kRefresh = std::chrono::seconds(1);
  // kBound is what docs/scale-out.md promises (the interval plus one store read), with room for
  // a loaded test machine.
  static constexpr auto kBound = kRefresh + std::chrono::seconds(4);

  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
    StartNodes("settings_refresh_seconds = 1\n", "");
  }

  // WaitFor retries attempt until it returns true or kBound passes, and returns how long it took
  // (nullopt on timeout).
  template <typename Attempt>
  std::optional<std::chrono::milliseconds> WaitFor(std::chrono::steady_clock::time_point since,
                                                  Attempt attempt) {
    for (;;) {
      if (attempt()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - since);
      }
      if (std::chrono::steady_clock::now() - since > kBound) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
};

TEST_F(MultiNodeSettingsTest, Applies_OnBothNodes_AServiceKeyRotatedInTheStore) {
  json policies = json::parse(Setting("service.policies"));
  ASSERT_TRUE(policies.is_array() && !policies.empty()) << policies.dump();
  const std::string name = policies[0].value("keyName", "");
  const std::string old_key = policies[0].value("primaryKey", "");
  const std::string new_key =
      ossl::Base64Encode(std::string_view("a rotated owner key of 32 bytes!"));
  policies[0]["primaryKey"] = new_key;
  DpsClient a(*node_a_);
  DpsClient b(*node_b_);

  auto since = std::chrono::steady_clock::now();
  StoreSetting("service.policies", policies.dump());
  for (DpsClient* client : {&a, &b}) {
    auto took = WaitFor(since, [&] {
      auto r = client->ServiceAs(name, new_key, "GET", "/enrollmentGroups/fleet");
      return r && r->status == 200;
    });
    ASSERT_TRUE(took.has_value()) << "the rotated key did not work within the bound";
    EXPECT_LE(*took, kBound);
  }

  // The replaced key now fails on both nodes, and what it asked for is not done.
  json enrollment = {
      {"registrationId", "after-rotation"},
      {"attestation",
       {{"type", "symmetricKey"},
        {"symmetricKey", {{"primaryKey", ossl::Base64Encode(std::string_view("k"))}}}}}};
  for (DpsClient* client : {&a, &b}) {
    auto refused = client->ServiceAs(name, old_key, "PUT", "/enrollments/after-rotation",
                                     enrollment);
    ASSERT_TRUE(refused) << refused.error().message();
    EXPECT_EQ(refused->status, 401) << refused->body;
    EXPECT_THAT(refused->body, HasSubstr("401002"));
    EXPECT_THAT(refused->body, HasSubstr("signature does not verify"));
  }
  auto absent = a.ServiceAs(name, new_key, "GET", "/enrollments/after-rotation");
  ASSERT_TRUE(absent) << absent.error().message();
  EXPECT_EQ(absent->status, 404) << absent->body;

  // Each node's connection.json now carries the key that works.
  for (const ServerProcess* node : {&*node_a_, &*node_b_}) {
    std::ifstream file(node->connection_file());
    json connection = json::parse(file, nullptr, false);
    EXPECT_THAT(connection.value("serviceConnectionString", ""),
                HasSubstr("SharedAccessKey=" + new_key));
  }
}

TEST_F(MultiNodeSettingsTest, RefusesEveryServiceKey_WhenTheStoredPoliciesAreUnusable) {
  std::string stored = Setting("service.policies");
  json policies = json::parse(stored);
  const std::string name = policies[0].value("keyName", "");
  const std::string key = policies[0].value("primaryKey", "");
  DpsClient b(*node_b_);

  auto since = std::chrono::steady_clock::now();
  StoreSetting("service.policies", "not json");
  auto took = WaitFor(since, [&] {
    auto r = b.ServiceAs(name, key, "GET", "/enrollmentGroups/fleet");
    return r && r->status == 401;
  });
  ASSERT_TRUE(took.has_value()) << "node B kept accepting keys the store no longer holds";
  auto refused = b.ServiceAs(name, key, "GET", "/enrollmentGroups/fleet");
  ASSERT_TRUE(refused) << refused.error().message();
  EXPECT_THAT(refused->body, HasSubstr("names no shared access policy"));

  StoreSetting("service.policies", stored);
  EXPECT_TRUE(WaitFor(std::chrono::steady_clock::now(), [&] {
                auto r = b.ServiceAs(name, key, "GET", "/enrollmentGroups/fleet");
                return r && r->status == 200;
              }).has_value())
      << "node B did not take the repaired policies back";
}

TEST_F(MultiNodeSettingsTest, Applies_OnBothNodes_AnIdScopeChangedInTheStore) {
  const std::string old_scope = node_a_->id_scope();
  ASSERT_EQ(old_scope, node_b_->id_scope()) << "both nodes adopt the stored scope";
  const std::string new_scope = "0ne0000BEEF";
  DpsClient a(*node_a_);
  DpsClient b(*node_b_);

  auto since = std::chrono::steady_clock::now();
  StoreSetting("device.idScope", new_scope);
  int n = 0;
  for (DpsClient* client : {&a, &b}) {
    auto took = WaitFor(since, [&] {
      std::string id = "moved-" + std::to_string(n++);
      auto r = client->Register(id, DeviceKey(id), new_scope);
      return r && r->status == 202;
    });
    ASSERT_TRUE(took.has_value()) << "the new ID scope was not served within the bound";
  }

  // The old scope is refused on both nodes and registers nothing.
  for (DpsClient* client : {&a, &b}) {
    auto refused = client->Register("old-scope-1", DeviceKey("old-scope-1"), old_scope);
    ASSERT_TRUE(refused) << refused.error().message();
    EXPECT_EQ(refused->status, 401) << refused->body;
    EXPECT_THAT(refused->body, HasSubstr("401002"));
    EXPECT_THAT(refused->body, HasSubstr("is not served here"));
  }
  EXPECT_EQ(Stored().count("old-scope-1"), 0u);
}

// MultiNodeSharedCaTest runs both nodes as one CA: both name one CA directory ([ca] directory).
class MultiNodeSharedCaTest : public MultiNodeTest {
 protected:
  void TearDown() override {
    node_b_.reset();
    node_a_.reset();
    if (!shared_ca_dir_.empty()) std::filesystem::remove_all(shared_ca_dir_);
  }

  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
    share_ca_ = true;
    StartNodes("", std::string("id_scope = \"") + kIdScope + "\"\n");
  }
};

TEST_F(MultiNodeSharedCaTest, Issues_EveryCertificateOnceWithDistinctSerialsThroughBothNodes) {
  constexpr int kEstDevices = 24;
  constexpr int kThreadsPerNode = 4;
  std::vector<std::string> ids;
  {
    DpsClient client(*node_a_);
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < kEstDevices; ++i) {
      ids.push_back("est-" + std::to_string(i));
      auto r = client.Register(ids.back(), DeviceKey(ids.back()));
      ASSERT_TRUE(r && r->status == 202) << ids.back();
    }
  }
  const std::string dirs[2] = {node_a_->root() + "/est", node_b_->root() + "/est"};
  for (const std::string& dir : dirs) std::filesystem::create_directories(dir);

  // Every device enrolls through both nodes at once (EST simpleenroll, RFC 7030 §4.2.1).
  std::mutex mu;
  std::vector<std::string> pems;
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node, t] {
        const ServerProcess& server = node == 0 ? *node_a_ : *node_b_;
        for (int k = t; k < kEstDevices; k += kThreadsPerNode) {
          std::string pem = EstEnroll(server, dirs[node], ids[k], DeviceKey(ids[k]));
          std::lock_guard lock(mu);
          pems.push_back(pem);
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(pems.size(), static_cast<size_t>(2 * kEstDevices));

  std::set<std::string> handed_out;
  for (const std::string& pem : pems) {
    std::string out;
    ASSERT_EQ(keys::testing::RunShell("openssl x509 -noout -serial -in " + pem, &out), 0) << out;
    ASSERT_EQ(out.rfind("serial=", 0), 0u) << out;
    handed_out.insert(out.substr(7, out.find_last_not_of("\r\n") - 6));
  }
  EXPECT_EQ(handed_out.size(), pems.size()) << "a serial was handed out twice";

  auto db = registry::postgres::Connection::Open(db_->url());
  ASSERT_TRUE(db.has_value()) << db.error().message();
  auto rows = db->Run(
      "SELECT serial, issuer_key_id FROM certificates "
      "WHERE source = 'issued' AND device_id LIKE 'est-%'",
      {});
  ASSERT_TRUE(rows.has_value()) << rows.error().message();
  std::set<std::string> recorded, issuers;
  for (int i = 0; i < rows->size(); ++i) {
    recorded.insert(rows->Text(i, 0));
    issuers.insert(rows->Text(i, 1));
  }
  EXPECT_EQ(rows->size(), 2 * kEstDevices) << "every certificate recorded once";
  EXPECT_EQ(recorded, handed_out);
  EXPECT_EQ(issuers.size(), 1u) << "both nodes issue as the one shared CA";
  EXPECT_GE(CountAudit("certificate.issue"), 2 * kEstDevices);
  VerifyAuditChain(3 * kEstDevices);
}

}  // namespace
}  // namespace devid::testing
