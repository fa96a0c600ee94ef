// `devid serve` as operators and devices meet it: first start, restart, TLS, the device API over
// real HTTPS, limits and graceful shutdown.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "ossl/base64.h"
#include "pki/certificate.h"
#include "pki/sas_token.h"
#include "sdk/https_client.h"
#include "loopback_socket.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";

unsigned Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string ConnectionValue(const std::string& connection_string, const std::string& name) {
  std::string key = name + "=";
  size_t at = connection_string.find(key);
  if (at == std::string::npos) return "";
  size_t end = connection_string.find(';', at);
  return connection_string.substr(at + key.size(), end == std::string::npos
                                                        ? std::string::npos
                                                        : end - at - key.size());
}

// Client is a device or operator talking HTTPS to the server, trusting only its bundle.
class Client {
 public:
  explicit Client(const ServerProcess& server) : server_(server) {
    sdk::ClientTlsOptions tls;
    tls.trust_bundle_pem = server.trust_bundle_pem();
    tls.server_name = "localhost";
    auto client = sdk::HttpsClient::Connect("127.0.0.1", server.port(), tls);
    EXPECT_TRUE(client) << client.error().message();
    if (client) client_.emplace(std::move(*client));
  }

  std::string ServiceToken() const {
    std::string cs = server_.service_connection_string();
    auto key = ossl::Base64Decode(ConnectionValue(cs, "SharedAccessKey"));
    return pki::CreateSasToken(*key, ConnectionValue(cs, "HostName"),
                               SystemClock().UnixSeconds() + 600,
                               ConnectionValue(cs, "SharedAccessKeyName"));
  }

  std::string DeviceToken(const std::string& key_b64, const std::string& reg_id) const {
    auto key = ossl::Base64Decode(key_b64);
    return pki::CreateSasToken(*key, server_.id_scope() + "/registrations/" + reg_id,
                               SystemClock().UnixSeconds() + 600, "registration");
  }

  Result<sdk::HttpResponse> Service(const std::string& method, const std::string& path,
                                const json& body = nullptr) {
    return client_->Send(method, path + "?api-version=2021-10-01",
                         {{"authorization", ServiceToken()},
                          {"content-type", "application/json; charset=utf-8"}},
                         body.is_null() ? "" : body.dump());
  }

  Result<sdk::HttpResponse> Register(const std::string& reg_id, const std::string& authorization,
                                 const std::string& body) {
    std::vector<sdk::HttpHeader> headers = {{"content-type", "application/json; charset=utf-8"}};
    if (!authorization.empty()) headers.emplace_back("authorization", authorization);
    return client_->Send("PUT",
                         "/" + server_.id_scope() + "/registrations/" + reg_id +
                             "/register?api-version=2019-03-31",
                         headers, body);
  }

  sdk::HttpsClient& raw() { return *client_; }

 private:
  const ServerProcess& server_;
  std::optional<sdk::HttpsClient> client_;
};

void CreateGroup(Client& client) {
  auto r = client.Service("PUT", "/enrollmentGroups/grp1",
                          {{"enrollmentGroupId", "grp1"},
                           {"attestation", {{"type", "symmetricKey"},
                                            {"symmetricKey", {{"primaryKey", kGroupKey}}}}}});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->status, 200) << r->body;
}

TEST(ServeTest, FirstStart_CreatesStateWithPrivateFileModes) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  const std::string data = server->data_dir();
  EXPECT_EQ(Mode(data), 0700u);
  // The CA made on first start: its keys are encrypted files, owner-only, like their directory.
  EXPECT_EQ(Mode(data + "/ca/authority"), 0700u);
  EXPECT_EQ(Mode(data + "/ca/authority/keys/passphrase"), 0600u);
  int ca_keys = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data + "/ca/authority/keys")) {
    if (entry.path().extension() != ".key") continue;
    ++ca_keys;
    EXPECT_EQ(Mode(entry.path().string()), 0600u) << entry.path();
    auto pem = ReadFile(entry.path().string());
    ASSERT_TRUE(pem);
    EXPECT_THAT(*pem, HasSubstr("BEGIN ENCRYPTED PRIVATE KEY")) << entry.path();
  }
  EXPECT_EQ(ca_keys, 2);  // root and issuing CA
  EXPECT_EQ(Mode(data + "/tls/server.key"), 0600u);
  EXPECT_EQ(Mode(data + "/connection.json"), 0600u);
  EXPECT_EQ(Mode(data + "/devid.db"), 0600u);

  EXPECT_THAT(server->id_scope(), ::testing::MatchesRegex("0ne[0-9A-F]{8}"));
  EXPECT_EQ(server->device_endpoint(), "https://localhost:" + std::to_string(server->port()));
  EXPECT_EQ(server->service_endpoint(), server->device_endpoint());
  std::string cs = server->service_connection_string();
  EXPECT_EQ(ConnectionValue(cs, "HostName"), "localhost");
  EXPECT_EQ(ConnectionValue(cs, "SharedAccessKeyName"), "provisioningserviceowner");
  EXPECT_EQ(ossl::Base64Decode(ConnectionValue(cs, "SharedAccessKey"))->size(), 32u);
  EXPECT_EQ(server->trust_bundle_file(), data + "/ca/trust-bundle.pem");

  // The server certificate is ECDSA P-256 for localhost and 127.0.0.1, issued by the CA's issuing
  // CA (sent in the chain) under the server profile.
  Client client(*server);
  auto peer = client.raw().PeerCertificatesDer();
  ASSERT_FALSE(peer.empty());
  auto leaf = pki::Certificate::FromDer(peer[0]);
  ASSERT_TRUE(leaf);
  EXPECT_EQ(X509_check_host(leaf->get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf->get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(leaf->get())), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_purpose(leaf->get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(peer.size(), 2u);  // leaf and issuing CA
  auto health = client.raw().Send("GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServeTest, Restart_ReusesScopeKeysCertificatesAndData) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  json before = server->connection();
  std::string root_pem = server->trust_bundle_pem();
  std::string leaf_before;
  {
    Client client(*server);
    CreateGroup(client);
    leaf_before = client.raw().PeerCertificatesDer().at(0);
  }
  ASSERT_TRUE(server->Restart());
  EXPECT_EQ(server->id_scope(), before["idScope"]);
  EXPECT_EQ(server->service_connection_string(), before["serviceConnectionString"]);
  EXPECT_EQ(server->trust_bundle_pem(), root_pem);
  Client client(*server);
  EXPECT_EQ(client.raw().PeerCertificatesDer().at(0), leaf_before);
  auto group = client.Service("GET", "/enrollmentGroups/grp1");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->status, 200) << group->body;
}

TEST(ServeTest, Registers_OverHttps_AndRejectsWithoutChangingTheStore) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Client client(*server);
  CreateGroup(client);
  std::string key = *pki::DeriveSymmetricKey(kGroupKey, "dev-1");

  auto wrong = client.Register("dev-1", client.DeviceToken(kGroupKey, "dev-1"),
                               R"({"registrationId":"dev-1"})");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_THAT(wrong->body, HasSubstr("401002"));
  auto missing = client.Service("GET", "/registrations/dev-1");
  EXPECT_EQ(missing->status, 404);

  auto r = client.Register("dev-1", client.DeviceToken(key, "dev-1"), R"({"registrationId":"dev-1"})");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->status, 202) << r->body;
  std::string op = json::parse(r->body)["operationId"];
  auto poll = client.raw().Send("GET",
                                "/" + server->id_scope() + "/registrations/dev-1/operations/" + op +
                                    "?api-version=2019-03-31",
                                {{"authorization", client.DeviceToken(key, "dev-1")}}, "{}");
  ASSERT_TRUE(poll);
  ASSERT_EQ(poll->status, 200) << poll->body;
  json state = json::parse(poll->body)["registrationState"];
  EXPECT_EQ(state["assignedHub"], "localhost");
  EXPECT_EQ(state["symmetricKey"]["enrollmentGroupId"], "grp1");
}

TEST(ServeTest, Rejects_BodyOverTheLimitWith413AndChangesNothing) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Client client(*server);
  CreateGroup(client);
  std::string key = *pki::DeriveSymmetricKey(kGroupKey, "big-1");
  std::string body = R"({"registrationId":"big-1","payload":{"blob":")" +
                     std::string(100 * 1024, 'x') + "\"}}";
  auto r = client.Register("big-1", client.DeviceToken(key, "big-1"), body);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(r->body, HasSubstr("413001"));
  Client other(*server);
  auto state = other.Service("GET", "/registrations/big-1");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 404);
}

TEST(ServeTest, Rejects_ServiceCallsWithoutAuthorization) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Client client(*server);
  auto r = client.raw().Send("GET", "/enrollments/x?api-version=2021-10-01");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  bool header = false;
  for (const auto& [k, v] : r->headers) header |= (k == "x-ms-error-code" && v == "401002");
  EXPECT_TRUE(header);
}

TEST(ServeTest, Sigterm_FinishesInFlightRegistrationsAndExitsCleanly) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  {
    Client setup(*server);
    CreateGroup(setup);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, broken{0};
  std::vector<std::thread> devices;
  for (int t = 0; t < 8; ++t) {
    devices.emplace_back([&, t] {
      Client client(*server);
      for (int i = 0; !stop; ++i) {
        std::string id = "dev-" + std::to_string(t) + "-" + std::to_string(i);
        std::string key = *pki::DeriveSymmetricKey(kGroupKey, id);
        auto r = client.Register(id, client.DeviceToken(key, id),
                                 R"({"registrationId":")" + id + "\"}");
        if (!r) break;  // the server has closed: no new request may start
        if (r->status == 202) {
          ++ok;
        } else {
          ++broken;  // an answered request must never be a failure
        }
      }
    });
  }
  while (ok < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto code = server->Stop();
  stop = true;
  for (auto& t : devices) t.join();
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(broken, 0);
  EXPECT_THAT(server->log(), HasSubstr("SIGTERM received"));
}

TEST(ServeTest, Rejects_ConfigWithAnUnknownKey) {
  ServerProcessOptions options;
  options.config_toml = "[server]\nlisten = \"127.0.0.1:0\"\nthreads = 4\n";
  auto server = ServerProcess::Start(options);
  ASSERT_FALSE(server);
  EXPECT_THAT(server.error().message(), HasSubstr("server.threads: unknown setting"));
}

TEST(ServeTest, Config_SetsHubsAndIdScope) {
  ServerProcessOptions options;
  options.config_toml =
      "[device]\nid_scope = \"0ne0000CAFE\"\nhubs = [\"hub-1.example\", \"hub-2.example\"]\n";
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server) << server.error().message();
  EXPECT_EQ(server->id_scope(), "0ne0000CAFE");
  Client client(*server);
  CreateGroup(client);
  std::string key = *pki::DeriveSymmetricKey(kGroupKey, "dev-h");
  auto r = client.Register("dev-h", client.DeviceToken(key, "dev-h"), R"({"registrationId":"dev-h"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto state = client.Service("GET", "/registrations/dev-h");
  EXPECT_THAT(json::parse(state->body)["assignedHub"].get<std::string>(),
              ::testing::AnyOf("hub-1.example", "hub-2.example"));
}

// The plain-HTTP revocation listener is part of the server: an address it cannot use stops the
// start, naming the flag, rather than a server running without it.
TEST(ServeTest, RevocationListen_RefusesToStartOnABadOrBusyAddress) {
  ServerProcessOptions bad;
  bad.args = {"--revocation-listen", "8080"};
  auto refused = ServerProcess::Start(bad);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message(), HasSubstr("--revocation-listen"));

  LoopbackSocket busy(0, /*listening=*/true);
  ASSERT_NE(busy.port(), 0);
  ServerProcessOptions taken;
  taken.args = {"--revocation-listen", "127.0.0.1:" + std::to_string(busy.port())};
  auto failed = ServerProcess::Start(taken);
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message(), HasSubstr("--revocation-listen: listening on 127.0.0.1:"));
}

// [ca] passphrase_env: the CA made on first start is encrypted under the variable's value, and a
// later start with a wrong or missing value refuses to run rather than serve without its CA.
TEST(ServeTest, CaPassphraseFromEnvironment_WrongOrMissingRefusesToStart) {
  ServerProcessOptions options;
  options.config_toml = "[ca]\npassphrase_env = \"DEVID_TEST_CA_PASS\"\n";
  options.env = {"DEVID_TEST_CA_PASS=correct horse battery staple"};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server) << server.error().message();
  EXPECT_FALSE(std::filesystem::exists(server->data_dir() + "/ca/authority/keys/passphrase"));
  ASSERT_TRUE(server->Stop());

  std::vector<std::string> argv = {DEVID_BINARY, "serve",  "--data-dir", server->data_dir(),
                                   "--config",   server->root() + "/devid.toml",
                                   "--listen",   "127.0.0.1:0"};
  CommandResult wrong = RunCommand(argv, {"DEVID_TEST_CA_PASS=wrong"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("loading the CA"));
  EXPECT_THAT(wrong.err, HasSubstr("wrong passphrase"));
  CommandResult missing = RunCommand(argv);
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("DEVID_TEST_CA_PASS"));
}

}  // namespace
}  // namespace devid::testing
