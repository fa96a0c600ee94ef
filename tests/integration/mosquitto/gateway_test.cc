// The devid plugin in a real Mosquitto 2.0 broker: a device provisioned through `devid serve`
// connects with an IoT Hub SAS token and is confined to its own topics; everyone else is refused.
// mosquitto_pub and mosquitto_sub play the devices and a back end (MQTT 5, so denials come back
// as reason codes).

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/service_auth.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "dps_client.h"
#include "est_client.h"
#include "loopback_socket.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "registry/postgres/testing/test_database.h"
#include "registry/sqlite/sqlite_registry.h"
#include "server_process.h"

extern char** environ;

namespace devid::testing {
namespace {

using nlohmann::json;
using registry::postgres::testing::TestDatabase;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";
constexpr char kOtherKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";

bool CanConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// BrokerOptions configures Broker.
struct BrokerOptions {
  // store_url is the plugin's plugin_opt_store.
  std::string store_url;
  // tls_dir, when set, is a devid serve data dir: the listener serves TLS with its server
  // certificate (<tls_dir>/tls/server.pem, server.key) and its trust bundle as cafile.
  std::string tls_dir;
  // extra_conf lines are appended to mosquitto.conf (more plugin options).
  std::vector<std::string> extra_conf;
  // per_listener_settings is mosquitto.conf's option of that name.
  bool per_listener_settings = false;
  // config, when set, replaces the listeners and plugin lines (a `devid gateway config` output)
  // and port names the port it listens on.
  std::string config;
  uint16_t port = 0;
  // x509_cafile, when set (with tls_dir), adds an mTLS listener that requires a client
  // certificate verified against this CA file.
  std::string x509_cafile;
};

// Broker runs `mosquitto -c <dir>/mosquitto.conf` with the devid plugin, on a listener on
// 127.0.0.1 (TLS when options.tls_dir is set), logging everything to <dir>/mosquitto.log. The
// destructor stops it (SIGTERM) and prints the log when the test failed.
class Broker {
 public:
  Broker(const std::string& dir, const BrokerOptions& options)
      : dir_(dir),
        port_(options.port != 0 ? options.port : FreePort()),
        x509_port_(FreePort()),
        has_x509_listener_(options.config.empty() && !options.tls_dir.empty() &&
                           !options.x509_cafile.empty()) {
    const passwd* user = ::getpwuid(::geteuid());
    std::ofstream conf(dir_ + "/mosquitto.conf");
    if (!options.config.empty()) {
      conf << options.config;
    } else {
      conf << "per_listener_settings " << (options.per_listener_settings ? "true" : "false") << "\n"
           << "allow_anonymous false\n"
           << "persistence false\n"
           << "listener " << port_ << " 127.0.0.1\n";
      if (!options.tls_dir.empty()) {
        conf << "certfile " << options.tls_dir << "/tls/server.pem\n"
             << "keyfile " << options.tls_dir << "/tls/server.key\n"
             << "cafile " << options.tls_dir << "/ca/trust-bundle.pem\n"
             << "tls_version tlsv1.2\n";
        if (!options.x509_cafile.empty()) {
          conf << "listener " << x509_port_ << " 127.0.0.1\n"
               << "certfile " << options.tls_dir << "/tls/server.pem\n"
               << "keyfile " << options.tls_dir << "/tls/server.key\n"
               << "cafile " << options.x509_cafile << "\n"
               << "require_certificate true\n"
               << "tls_version tlsv1.2\n";
        }
      }
      conf << "plugin " << DEVID_MOSQUITTO_PLUGIN << "\n"
           << "plugin_opt_store " << options.store_url << "\n";
    }
    conf << "log_dest file " << log_path() << "\n"
         << "log_type all\n"
         // As root the broker would switch to the mosquitto user, who cannot read the test's store.
         << "user " << (user != nullptr ? user->pw_name : "root") << "\n";
    for (const std::string& line : options.extra_conf) conf << line << "\n";
    conf.close();
    std::string conf_path = dir_ + "/mosquitto.conf";
    std::vector<char*> argv = {const_cast<char*>(DEVID_MOSQUITTO_BROKER), const_cast<char*>("-c"),
                               conf_path.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::string out_path = dir_ + "/mosquitto.out";
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }

  ~Broker() {
    Stop();
    if (::testing::Test::HasFailure()) {
      std::cerr << "--- mosquitto log ---\n"
                << log() << "--- mosquitto output ---\n"
                << ReadFile(dir_ + "/mosquitto.out");
    }
  }

  // WaitListening waits up to 10 s for the listeners; false when the broker exited first.
  bool WaitListening() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pid_ <= 0 || Exited()) return false;
      if (CanConnect(port_) && (!has_x509_listener_ || CanConnect(x509_port_))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // WaitExit waits up to 10 s for the broker to exit by itself and returns its exit code, or -1.
  int WaitExit() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Exited()) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  uint16_t port() const { return port_; }
  uint16_t x509_port() const { return x509_port_; }
  std::string log_path() const { return dir_ + "/mosquitto.log"; }
  std::string log() const { return ReadFile(log_path()); }

 private:
  bool Exited() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return true;
  }

  std::string dir_;
  uint16_t port_;
  uint16_t x509_port_;
  bool has_x509_listener_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// Background runs argv (argv[0] a path) with its output in out_path until it exits or is
// destroyed (SIGTERM), for clients that stay connected while the test acts.
class Background {
 public:
  Background(const std::vector<std::string>& args, const std::string& out_path)
      : out_path_(out_path) {
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  // WaitExit waits up to timeout for the process to exit and returns its exit code, or nullopt.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code_;
  }

  std::string output() const { return ReadFile(out_path_); }

 private:
  std::string out_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// WaitFor polls done every 20 ms until it holds or timeout passes; it returns how long it took,
// or nullopt on timeout.
template <typename Done>
std::optional<std::chrono::milliseconds> WaitFor(Done done, std::chrono::milliseconds timeout) {
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (done()) return elapsed;
    if (elapsed >= timeout) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Device is how a device authenticates to the broker.
struct Device {
  std::string id;
  std::string key;  // base64
  std::string hub = "localhost";
  int64_t lifetime_s = 3600;

  std::string Username() const { return hub + "/" + id + "/?api-version=2021-04-12"; }
  // Password is an IoT Hub SAS token, signed over the strictly encoded sr (protocol notes §2.4).
  std::string Password() const {
    auto k = ossl::Base64Decode(key);
    return pki::CreateSasToken(*k, PercentEncodeComponent(hub + "/devices/" + id, true),
                               SystemClock().UnixSeconds() + lifetime_s, "");
  }
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartAndProvision()); }

  // StartAndProvision starts devid serve on store_url ("" = its SQLite file), enrolls group grp1,
  // provisions dev-1 and dev-2 through it and starts the broker on the same store.
  void StartAndProvision(const std::string& store_url = "") {
    ServerProcessOptions options;
    if (!store_url.empty()) options.config_toml = "[store]\nurl = \"" + store_url + "\"\n";
    auto server = ServerProcess::Start(options);
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    DpsClient client(*server_);
    ASSERT_TRUE(client.connected());
    auto group = client.Service(
        "PUT", "/enrollmentGroups/grp1",
        {{"enrollmentGroupId", "grp1"},
         {"attestation",
          {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", kGroupKey}}}}}});
    ASSERT_TRUE(group) << group.error().message();
    ASSERT_EQ(group->status, 200) << group->body;
    for (const char* id : {"dev-1", "dev-2"}) {
      std::string key = *pki::DeriveSymmetricKey(kGroupKey, id);
      auto r = client.Register(id, key);
      ASSERT_TRUE(r) << r.error().message();
      ASSERT_EQ(r->status, 202) << r->body;
      auto state = client.Service("GET", std::string("/registrations/") + id);
      ASSERT_TRUE(state);
      ASSERT_EQ(state->status, 200) << state->body;
      ASSERT_EQ(json::parse(state->body)["status"], "assigned") << state->body;
      ASSERT_EQ(json::parse(state->body)["assignedHub"], "localhost") << state->body;
    }
    store_url_ = store_url;
    StartBroker();
  }

  void TearDown() override {
    broker_.reset();  // before the server removes its directory
    server_.reset();
  }

  // StartBroker (re)starts the broker on the server's store, over TLS with the server's
  // certificate, with extra_conf appended to its configuration and, when x509_cafile is set, an
  // mTLS listener trusting it.
  void StartBroker(const std::vector<std::string>& extra_conf = {},
                   const std::string& x509_cafile = "") {
    broker_.reset();
    broker_.emplace(
        server_->root(),
        BrokerOptions{
            .store_url =
                store_url_.empty() ? "sqlite://" + server_->data_dir() + "/devid.db" : store_url_,
            .tls_dir = server_->data_dir(),
            .extra_conf = extra_conf,
            .x509_cafile = x509_cafile});
    ASSERT_TRUE(broker_->WaitListening()) << broker_->log();
  }

  static Device Provisioned(const std::string& id) {
    return Device{id, *pki::DeriveSymmetricKey(kGroupKey, id)};
  }

  // MqttArgs is the start of a mosquitto_pub/mosquitto_sub command line: MQTT 5 over TLS to the
  // broker, trusting devid's trust bundle, with the client id and credentials given.
  std::vector<std::string> MqttArgs(const char* tool, const std::string& client_id,
                                    const std::string& username,
                                    const std::string& password) const {
    return {tool,
            "-h",
            "127.0.0.1",
            "-p",
            std::to_string(broker_->port()),
            "--cafile",
            server_->data_dir() + "/ca/trust-bundle.pem",
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-i",
            client_id,
            "-u",
            username,
            "-P",
            password};
  }

  // ClientArgs is MqttArgs as device (client id = device.id unless client_id).
  std::vector<std::string> ClientArgs(const char* tool, const Device& device,
                                      const std::string& client_id = "") const {
    return MqttArgs(tool, client_id.empty() ? device.id : client_id, device.Username(),
                    device.Password());
  }

  // Publish sends one QoS 1 message as device (client id = device.id unless client_id is set).
  CommandResult Publish(const Device& device, const std::string& topic,
                        const std::string& client_id = "") {
    std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_PUB, device, client_id);
    args.insert(args.end(), {"-t", topic, "-m", R"({"temperature":21.5})"});
    return RunCommand(args);
  }

  // Subscribe subscribes as device and waits up to wait_s for one message.
  CommandResult Subscribe(const Device& device, const std::string& filter, int wait_s = 1) {
    std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_SUB, device);
    args.insert(args.end(), {"-t", filter, "-C", "1", "-W", std::to_string(wait_s)});
    return RunCommand(args);
  }

  // Subscribe keeps device subscribed to its cloud-to-device topic in the background.
  Background Subscribe(const std::string& device_id) {
    std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_SUB, Provisioned(device_id));
    args.insert(args.end(),
                {"-t", "devices/" + device_id + "/messages/devicebound/#", "-C", "1", "-W", "60"});
    return Background(args, server_->root() + "/sub-" + device_id + ".out");
  }

  // DisableGroup sets grp1's provisioningStatus to disabled through the service API.
  void DisableGroup() {
    DpsClient client(*server_);
    auto disabled = client.Service(
        "PUT", "/enrollmentGroups/grp1",
        {{"enrollmentGroupId", "grp1"},
         {"provisioningStatus", "disabled"},
         {"attestation",
          {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", kGroupKey}}}}}},
        {{"if-match", "*"}});
    ASSERT_TRUE(disabled) << disabled.error().message();
    ASSERT_EQ(disabled->status, 200) << disabled->body;
  }

  // ExpectSessionClosedWithin5sWhenTheGroupIsDisabled subscribes as dev-1, disables grp1 and
  // expects the plugin to close the live session within 5 s (the documented bound), after which
  // mosquitto_sub ends without its message.
  void ExpectSessionClosedWithin5sWhenTheGroupIsDisabled() {
    Background sub = Subscribe("dev-1");
    ASSERT_TRUE(WaitFor([&] { return broker_->log().find("as dev-1 (") != std::string::npos; },
                        std::chrono::milliseconds(5000)));
    ASSERT_NO_FATAL_FAILURE(DisableGroup());
    auto closed_after = WaitFor(
        [&] {
          return broker_->log().find(
                     "devid: closing the session of client \"dev-1\": device "
                     "\"dev-1\": its enrollment is disabled") != std::string::npos;
        },
        std::chrono::milliseconds(5000));
    ASSERT_TRUE(closed_after.has_value()) << "the session outlived the disable by 5 s";
    std::cerr << "session closed " << closed_after->count() << " ms after the disable\n";
    EXPECT_TRUE(sub.WaitExit(std::chrono::milliseconds(5000)).has_value()) << sub.output();
  }

  std::string store_url_;
  std::optional<ServerProcess> server_;
  std::optional<Broker> broker_;
};

TEST_F(GatewayTest, Admits_ProvisionedDeviceToPublishItsTelemetry) {
  auto r = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/%24.ct=application%2Fjson");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("ailed")));
  std::string log = broker_->log();
  EXPECT_THAT(log, HasSubstr("New client connected"));
  EXPECT_THAT(log, Not(HasSubstr("devid: denied")));
  EXPECT_THAT(log, Not(HasSubstr("devid: refused")));
}

TEST_F(GatewayTest, Rejects_WrongKey) {
  Device device = Provisioned("dev-1");
  device.key = kOtherKey;
  auto r = Publish(device, "devices/dev-1/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("authori"));
  EXPECT_THAT(broker_->log(), HasSubstr("signature does not match"));
}

TEST_F(GatewayTest, Rejects_ExpiredToken) {
  Device device = Provisioned("dev-1");
  device.lifetime_s = -1;
  auto r = Publish(device, "devices/dev-1/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("expired"));
}

TEST_F(GatewayTest, Rejects_UnregisteredDevice) {
  auto r = Publish(Provisioned("dev-9"), "devices/dev-9/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("not registered"));
}

TEST_F(GatewayTest, Rejects_ValidTokenOfAnotherDeviceAndMismatchedClientId) {
  Device dev1 = Provisioned("dev-1");
  auto r = Publish(dev1, "devices/dev-1/messages/events/", "dev-2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("client id is not the device ID"));
}

TEST_F(GatewayTest, Rejects_AnonymousClient) {
  auto r =
      RunCommand({DEVID_MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                  "--cafile", server_->data_dir() + "/ca/trust-bundle.pem", "-V", "mqttv5", "-i",
                  "dev-1", "-t", "devices/dev-1/messages/events/", "-m", "x"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("authori"));
  EXPECT_THAT(broker_->log(),
              HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: no username"));
}

TEST_F(GatewayTest, Rejects_PlainMqttOnTheTlsListener) {
  std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_PUB, Provisioned("dev-1"));
  args.erase(args.begin() + 5, args.begin() + 7);  // no --cafile: plain MQTT
  args.insert(args.end(), {"-t", "devices/dev-1/messages/events/", "-m", "x"});
  auto r = RunCommand(args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), Not(HasSubstr("New client connected")));
  EXPECT_THAT(broker_->log(), Not(HasSubstr("devid: refused")));
}

TEST_F(GatewayTest, ClientRefusesBroker_WhenItDoesNotTrustDevidsCa) {
  // The broker presents devid's server certificate, which only devid's trust bundle verifies.
  std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_PUB, Provisioned("dev-1"));
  args[6] = server_->root() + "/other-ca.pem";
  std::ofstream(args[6]) << ReadFile("/etc/ssl/certs/ca-certificates.crt");
  args.insert(args.end(), {"-t", "devices/dev-1/messages/events/", "-m", "x"});
  auto r = RunCommand(args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("TLS error"));
  EXPECT_THAT(broker_->log(), HasSubstr("unknown ca"));
  EXPECT_THAT(broker_->log(), Not(HasSubstr("New client connected")));
}

TEST_F(GatewayTest, Denies_PublishingToAnotherDevicesTopic) {
  auto r = Publish(Provisioned("dev-1"), "devices/dev-2/messages/events/");
  // MQTT 5 reports the refusal in PUBACK; the broker drops the message.
  EXPECT_THAT(r.err, HasSubstr("ot authori"));
  EXPECT_THAT(broker_->log(),
              HasSubstr("devid: denied client \"dev-1\" access 2 to \"devices/dev-2/messages/"));
}

TEST_F(GatewayTest, Denies_SubscribingOutsideItsOwnTopics) {
  for (const char* filter : {"#", "devices/#", "devices/dev-2/messages/devicebound/#"}) {
    auto r = Subscribe(Provisioned("dev-1"), filter);
    // SUBACK carries "not authorized"; mosquitto_sub reports it and disconnects.
    EXPECT_THAT(r.err, HasSubstr("All subscription requests were denied")) << filter;
    EXPECT_THAT(broker_->log(), HasSubstr("devid: denied client \"dev-1\" access 4 to \"" +
                                          std::string(filter) + "\""));
  }
  // Its own cloud-to-device topic is allowed: no denial, it waits for a message until -W.
  auto own = Subscribe(Provisioned("dev-1"), "devices/dev-1/messages/devicebound/#");
  EXPECT_THAT(own.err, Not(HasSubstr("denied")));
  EXPECT_THAT(broker_->log(), Not(HasSubstr("to \"devices/dev-1/messages/devicebound/#\"")));
}

TEST_F(GatewayTest, Refuses_DeviceOnNextConnectOnceItsGroupIsDisabled) {
  Device device = Provisioned("dev-1");
  ASSERT_EQ(Publish(device, "devices/dev-1/messages/events/").exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(DisableGroup());
  // The plugin's cached lookups live for cache_ttl_ms (2000 by default); no connect after that
  // is admitted.
  auto refused_after =
      WaitFor([&] { return Publish(device, "devices/dev-1/messages/events/").exit_code != 0; },
              std::chrono::milliseconds(2500));
  ASSERT_TRUE(refused_after.has_value()) << "still admitted 2.5 s after the group was disabled";
  EXPECT_THAT(broker_->log(), HasSubstr("its enrollment is disabled"));
}

TEST_F(GatewayTest, ClosesLiveSessionWithin5s_WhenItsGroupIsDisabled) {
  ASSERT_NO_FATAL_FAILURE(ExpectSessionClosedWithin5sWhenTheGroupIsDisabled());
  EXPECT_THAT(broker_->log(), HasSubstr("Client dev-1 been disconnected by administrative action"));
  // And it cannot come back.
  auto again = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("authori"));
}

TEST_F(GatewayTest, ClosesLiveSessionWithin5s_WhenItsRegistrationIsDeleted) {
  Background sub1 = Subscribe("dev-1");
  Background sub2 = Subscribe("dev-2");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string log = broker_->log();
        return log.find("as dev-1 (") != std::string::npos &&
               log.find("as dev-2 (") != std::string::npos;
      },
      std::chrono::milliseconds(5000)));
  DpsClient client(*server_);
  auto deleted = client.Service("DELETE", "/registrations/dev-1", nullptr, {{"if-match", "*"}});
  ASSERT_TRUE(deleted) << deleted.error().message();
  ASSERT_EQ(deleted->status, 204) << deleted->body;
  auto closed_after = WaitFor(
      [&] {
        return broker_->log().find(
                   "devid: closing the session of client \"dev-1\": device "
                   "\"dev-1\": it is not registered") != std::string::npos;
      },
      std::chrono::milliseconds(5000));
  ASSERT_TRUE(closed_after.has_value()) << "the session outlived the deletion by 5 s";
  EXPECT_TRUE(sub1.WaitExit(std::chrono::milliseconds(5000)).has_value()) << sub1.output();
  EXPECT_NE(Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/").exit_code, 0);
  // The other device of the group keeps its session.
  EXPECT_FALSE(sub2.WaitExit(std::chrono::milliseconds(1500)).has_value()) << sub2.output();
  EXPECT_THAT(broker_->log(), Not(HasSubstr("closing the session of client \"dev-2\"")));
}

TEST_F(GatewayTest, ClosesLiveSession_WhenItsTokenExpires) {
  // As IoT Hub does: a session lasts no longer than the SAS token it was opened with.
  Device device = Provisioned("dev-1");
  device.lifetime_s = 3;
  std::vector<std::string> args = ClientArgs(DEVID_MOSQUITTO_SUB, device);
  args.insert(args.end(), {"-t", "devices/dev-1/messages/devicebound/#", "-C", "1", "-W", "60"});
  Background sub(args, server_->root() + "/sub-expiring.out");
  ASSERT_TRUE(WaitFor([&] { return broker_->log().find("as dev-1 (") != std::string::npos; },
                      std::chrono::milliseconds(3000)));
  auto closed_after = WaitFor(
      [&] {
        return broker_->log().find(
                   "devid: closing the session of client \"dev-1\": device "
                   "\"dev-1\": the token has expired") != std::string::npos;
      },
      std::chrono::milliseconds(6000));
  ASSERT_TRUE(closed_after.has_value()) << "the session outlived its token";
  EXPECT_TRUE(sub.WaitExit(std::chrono::milliseconds(5000)).has_value()) << sub.output();
  // A fresh token gets the device back in.
  EXPECT_EQ(Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/").exit_code, 0);
}

TEST_F(GatewayTest, ThrottlesRepeatedFailures_ThenRefusesEvenTheRightKey) {
  StartBroker({"plugin_opt_throttle_slow_after 3", "plugin_opt_throttle_refuse_after 3",
               "plugin_opt_throttle_refuse_seconds 60"});
  Device wrong = Provisioned("dev-1");
  wrong.key = kOtherKey;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(Publish(wrong, "devices/dev-1/messages/events/").exit_code, 0);
  }
  EXPECT_THAT(broker_->log(), HasSubstr("signature does not match"));
  // Refused without its credentials being checked, for throttle_refuse_seconds.
  auto r = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("authori"));
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: 3 failed "
                                        "authentications; retry in 60 s"));
  // Another device from the same address is unaffected (the address threshold is higher).
  auto other = Publish(Provisioned("dev-2"), "devices/dev-2/messages/events/");
  EXPECT_EQ(other.exit_code, 0) << other.err;
}

TEST_F(GatewayTest, ThrottlesAnAddressTryingManyClientIds) {
  StartBroker(
      {"plugin_opt_throttle_address_slow_after 3", "plugin_opt_throttle_address_refuse_after 3"});
  for (const char* id : {"dev-7", "dev-8", "dev-9"}) {
    EXPECT_NE(
        Publish(Provisioned(id), std::string("devices/") + id + "/messages/events/").exit_code, 0);
  }
  auto r = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: 3 failed "
                                        "authentications; retry in 300 s"));
}

// The same gateway on PostgreSQL: devid serve and the plugin share one database.
class GatewayPostgresTest : public GatewayTest {
 protected:
  void SetUp() override {
    DEVID_CREATE_TEST_DATABASE(db_);
    ASSERT_NO_FATAL_FAILURE(StartAndProvision(db_->url()));
  }
  void TearDown() override {
    GatewayTest::TearDown();  // the broker and server close their connections first
    db_.reset();
  }

  std::optional<TestDatabase> db_;
};

TEST_F(GatewayPostgresTest, AdmitsProvisionedDevice_AndRefusesWrongKey) {
  auto ok = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(broker_->log(), HasSubstr("devid: admitting devices from the PostgreSQL store"));
  Device wrong = Provisioned("dev-2");
  wrong.key = kOtherKey;
  EXPECT_NE(Publish(wrong, "devices/dev-2/messages/events/").exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("signature does not match"));
  EXPECT_NE(Publish(Provisioned("dev-9"), "devices/dev-9/messages/events/").exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("not registered"));
}

TEST_F(GatewayPostgresTest, ClosesLiveSessionWithin5s_WhenItsGroupIsDisabled) {
  ASSERT_NO_FATAL_FAILURE(ExpectSessionClosedWithin5sWhenTheGroupIsDisabled());
  EXPECT_NE(Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/").exit_code, 0);
}

TEST(GatewayPluginTest, BrokerRefusesToStart_WhenPostgresIsUnreachable) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  // Port 1 on loopback refuses connections.
  Broker broker(server->root(),
                BrokerOptions{"postgresql://devid@127.0.0.1:1/devid?connect_timeout=2", "", {}});
  EXPECT_NE(broker.WaitExit(), 0);
  EXPECT_THAT(broker.log() + ReadFile(server->root() + "/mosquitto.out"),
              HasSubstr("devid: opening the registry"));
}

TEST_F(GatewayTest, RefusesEveryone_WhenTheBrokerDeliversNoTicks) {
  // With per_listener_settings true Mosquitto 2.0 never calls MOSQ_EVT_TICK, so the plugin could
  // not close disabled devices' sessions: after a grace period it admits no one.
  broker_.reset();
  broker_.emplace(server_->root(),
                  BrokerOptions{.store_url = "sqlite://" + server_->data_dir() + "/devid.db",
                                .tls_dir = server_->data_dir(),
                                .per_listener_settings = true});
  ASSERT_TRUE(broker_->WaitListening()) << broker_->log();
  auto refused_after = WaitFor(
      [&] {
        return Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/").exit_code != 0;
      },
      std::chrono::milliseconds(8000));
  ASSERT_TRUE(refused_after.has_value());
  EXPECT_GE(refused_after->count(), 4000);
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: the "
                                        "broker delivers no tick events"));
}

TEST(GatewayPluginTest, BrokerRefusesToStart_WithBadPluginOption) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Broker broker(
      server->root(),
      BrokerOptions{"sqlite://" + server->data_dir() + "/devid.db", "", {"plugin_opt_sotre x"}});
  EXPECT_NE(broker.WaitExit(), 0);
  EXPECT_THAT(broker.log() + ReadFile(server->root() + "/mosquitto.out"),
              HasSubstr("plugin_opt_sotre"));
}

TEST_F(GatewayTest, ConfinesDevicesToACustomTopicLayout) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"plugin_opt_publish_topics telemetry/{deviceId}",
                                       "plugin_opt_receive_topics commands/{deviceId}"}));
  auto own = Publish(Provisioned("dev-1"), "telemetry/dev-1/temperature");
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_THAT(own.err, Not(HasSubstr("ot authori")));
  // MQTT 5 reports a refused publish in PUBACK and a refused subscription in SUBACK.
  for (const char* topic : {"telemetry/dev-2/temperature", "devices/dev-1/messages/events/"}) {
    EXPECT_THAT(Publish(Provisioned("dev-1"), topic).err, HasSubstr("ot authori")) << topic;
    EXPECT_THAT(broker_->log(), HasSubstr("devid: denied client \"dev-1\" access 2 to \"" +
                                          std::string(topic) + "\""));
  }
  EXPECT_THAT(Subscribe(Provisioned("dev-1"), "commands/#").err,
              HasSubstr("All subscription requests were denied"));
  EXPECT_THAT(Subscribe(Provisioned("dev-1"), "commands/dev-1/#").err, Not(HasSubstr("denied")));
}

TEST(GatewayPluginTest, BrokerRefusesToStart_WithBadTopicTemplate) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Broker broker(server->root(), BrokerOptions{.store_url = "sqlite://" + server->data_dir() +
                                                           "/devid.db",
                                              .extra_conf = {"plugin_opt_publish_topics "
                                                             "devices/{deviceId}/# telemetry"}});
  EXPECT_NE(broker.WaitExit(), 0);
  EXPECT_THAT(broker.log() + ReadFile(server->root() + "/mosquitto.out"),
              HasSubstr("plugin_opt_publish_topics: topic template \"devices/{deviceId}/#\" holds "
                        "a wildcard"));
}

TEST(GatewayConfigCommandTest, BrokerStartsWithThePrintedConfig_AndLoadsThePlugin) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  uint16_t port = FreePort();
  CommandResult printed = RunCommand(
      {DEVID_BINARY, "gateway", "config", "--data-dir", server->data_dir(), "--plugin",
       DEVID_MOSQUITTO_PLUGIN, "--bind", "127.0.0.1", "--port", std::to_string(port),
       "--x509-port", std::to_string(FreePort())});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.out, HasSubstr("require_certificate true"));
  EXPECT_THAT(printed.out,
              HasSubstr("plugin_opt_store sqlite://" + server->data_dir() + "/devid.db\n"));
  Broker broker(server->root(), BrokerOptions{.config = printed.out, .port = port});
  ASSERT_TRUE(broker.WaitListening()) << broker.log();
  EXPECT_THAT(broker.log(), HasSubstr("devid: admitting devices from the SQLite store"));

  CommandResult missing = RunCommand({DEVID_BINARY, "gateway", "config", "--data-dir",
                                      server->root() + "/nothing-here"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("does not exist (start `devid serve --data-dir` on it once)"));
}

// A root the broker's mTLS listener trusts but no enrollment names, with a dev-1 leaf it signed,
// and a self-signed dev-1 certificate nobody trusts.
constexpr char kMakeRogueCertificates[] = R"sh(
set -e
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > leaf.ext
printf 'extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n' >> leaf.ext
printf 'authorityKeyIdentifier=keyid\n' >> leaf.ext
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-root.key \
  -subj /CN=Rogue-Root -days 30 -out rogue-root.pem -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-dev-1.key \
  -subj /CN=dev-1 -out rogue-dev-1.csr 2>/dev/null
openssl x509 -req -in rogue-dev-1.csr -CA rogue-root.pem -CAkey rogue-root.key -CAcreateserial \
  -days 30 -extfile leaf.ext -out rogue-dev-1.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout self-dev-1.key \
  -subj /CN=dev-1 -days 30 -out self-dev-1.pem -addext extendedKeyUsage=clientAuth 2>/dev/null
)sh";

// GatewayX509Test adds the mTLS listener: dev-1 holds a device certificate devid issued it
// through EST; the listener also trusts the rogue root, so that the plugin, not TLS, refuses it.
class GatewayX509Test : public GatewayTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(GatewayTest::SetUp());
    dir_ = server_->root() + "/x509";
    std::string out;
    ASSERT_EQ(keys::testing::RunShell("mkdir -p " + dir_ + " && cd " + dir_ + " && " +
                                          kMakeRogueCertificates,
                                      &out),
              0)
        << out;
    // A device sends its chain: the certificate from EST and devid's issuing CA (the broker
    // trusts only the roots of the trust bundle).
    std::string leaf = EstEnroll(*server_, dir_, "dev-1", Provisioned("dev-1").key);
    cert_ = dir_ + "/dev-1-chain.pem";
    ASSERT_EQ(keys::testing::RunShell("cat " + leaf + " " + server_->data_dir() +
                                      "/ca/authority/certs/issuing-*.pem > " + cert_),
              0);
    std::string cafile = dir_ + "/clients.pem";
    ASSERT_EQ(keys::testing::RunShell("cat " + server_->trust_bundle_file() + " " + dir_ +
                                      "/rogue-root.pem > " + cafile),
              0);
    ASSERT_NO_FATAL_FAILURE(StartBroker({}, cafile));
  }

  // X509Args is the start of a mosquitto_pub/sub command line on the mTLS listener, presenting
  // cert and key, with client id client_id and the IoT Hub username of device_id.
  std::vector<std::string> X509Args(const char* tool, const std::string& cert,
                                    const std::string& key, const std::string& client_id,
                                    const std::string& device_id) const {
    return {tool,      "-h",     "127.0.0.1", "-p",  std::to_string(broker_->x509_port()),
            "--cafile", server_->trust_bundle_file(), "--cert", cert, "--key", key,
            "-V",      "mqttv5", "-q",        "1",   "-i", client_id,
            "-u",      Provisioned(device_id).Username()};
  }

  CommandResult PublishX509(const std::string& cert, const std::string& key,
                            const std::string& client_id = "dev-1",
                            const std::string& device_id = "dev-1") {
    std::vector<std::string> args = X509Args(DEVID_MOSQUITTO_PUB, cert, key, client_id, device_id);
    args.insert(args.end(),
                {"-t", "devices/" + device_id + "/messages/events/", "-m", R"({"x509":true})"});
    return RunCommand(args);
  }

  std::string key() const { return dir_ + "/dev-1.key"; }

  std::string dir_;
  std::string cert_;  // dev-1's devid-issued certificate chain (PEM)
};

TEST_F(GatewayX509Test, Admits_DeviceWithItsDevidIssuedCertificate) {
  auto r = PublishX509(cert_, key());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(broker_->log(), Not(HasSubstr("devid: refused")));
  // Confined to its own topics like a SAS device.
  std::vector<std::string> args = X509Args(DEVID_MOSQUITTO_PUB, cert_, key(), "dev-1", "dev-1");
  args.insert(args.end(), {"-t", "devices/dev-2/messages/events/", "-m", "x"});
  EXPECT_THAT(RunCommand(args).err, HasSubstr("ot authori"));
}

TEST_F(GatewayX509Test, ClosesLiveSessionWithin5s_AndRefusesNextConnect_WhenTheCertIsRevoked) {
  std::vector<std::string> args = X509Args(DEVID_MOSQUITTO_SUB, cert_, key(), "dev-1", "dev-1");
  args.insert(args.end(),
              {"-t", "devices/dev-1/messages/devicebound/#", "-C", "1", "-W", "60"});
  Background sub(args, dir_ + "/sub.out");
  ASSERT_TRUE(WaitFor([&] { return broker_->log().find("as dev-1 (") != std::string::npos; },
                      std::chrono::milliseconds(5000)));
  std::string serial_out;
  ASSERT_EQ(keys::testing::RunShell("openssl x509 -in " + cert_ + " -noout -serial", &serial_out),
            0);
  std::string serial = serial_out.substr(serial_out.find('=') + 1);
  serial.erase(serial.find_last_not_of("\n") + 1);
  CommandResult revoked = RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", serial,
                                      "--reason", "keyCompromise", "--connection",
                                      server_->connection_file()});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.out << revoked.err;
  auto closed_after = WaitFor(
      [&] {
        std::string log = broker_->log();
        size_t at = log.find("devid: closing the session of client \"dev-1\"");
        return at != std::string::npos && log.find("was revoked", at) != std::string::npos;
      },
      std::chrono::milliseconds(5000));
  ASSERT_TRUE(closed_after.has_value()) << "the session outlived the revocation by 5 s";
  std::cerr << "session closed " << closed_after->count() << " ms after the revocation\n";
  EXPECT_TRUE(sub.WaitExit(std::chrono::milliseconds(5000)).has_value()) << sub.output();

  EXPECT_NE(PublishX509(cert_, key()).exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: device "
                                        "\"dev-1\": its client certificate (serial"));
}

TEST_F(GatewayX509Test, Refuses_CertificateOfDeviceAUsedAsDeviceB) {
  EXPECT_NE(PublishX509(cert_, key(), "dev-2", "dev-2").exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("device \"dev-2\": the client certificate's CN \"dev-1\" "
                                        "is not the device ID"));
  EXPECT_NE(PublishX509(cert_, key(), "dev-2", "dev-1").exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("the client id is not the device ID"));
}

TEST_F(GatewayX509Test, Refuses_CertificateNoEnrollmentTrusts) {
  EXPECT_NE(PublishX509(dir_ + "/rogue-dev-1.pem", dir_ + "/rogue-dev-1.key").exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"dev-1\" from 127.0.0.1: device "
                                        "\"dev-1\": no enrollment trusts this certificate"));
}

TEST_F(GatewayX509Test, Refuses_CertificateFromAnUntrustedCaAtTls) {
  EXPECT_NE(PublishX509(dir_ + "/self-dev-1.pem", dir_ + "/self-dev-1.key").exit_code, 0);
  EXPECT_THAT(broker_->log(), Not(HasSubstr("as dev-1 (")));
}

TEST_F(GatewayX509Test, Refuses_DeviceWhoseGroupIsDisabled) {
  ASSERT_NO_FATAL_FAILURE(DisableGroup());
  auto refused = WaitFor([&] { return PublishX509(cert_, key()).exit_code != 0; },
                         std::chrono::milliseconds(5000));
  EXPECT_TRUE(refused.has_value());
  EXPECT_THAT(broker_->log(), HasSubstr("device \"dev-1\": its enrollment is disabled"));
}

TEST_F(GatewayX509Test, Refuses_ClientWithoutCertificateOrUsername) {
  // The mTLS listener requires a certificate at TLS; with one but no username the plugin refuses.
  std::vector<std::string> args = {DEVID_MOSQUITTO_PUB, "-h", "127.0.0.1", "-p",
                                   std::to_string(broker_->x509_port()), "--cafile",
                                   server_->trust_bundle_file(), "--cert", cert_, "--key", key(),
                                   "-V", "mqttv5", "-q", "1", "-i", "dev-1", "-t",
                                   "devices/dev-1/messages/events/", "-m", "x"};
  EXPECT_NE(RunCommand(args).exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("the username is not {hub}/{deviceId}/?api-version"));
}

// BackEnd is how a back-end (service) client authenticates to the broker: client id $service…,
// username `{hub}/$service`, a service SAS token over the hub signed with a store policy's key.
struct BackEnd {
  std::string policy;
  std::string key;  // base64
  std::string client_id = "$service-test";
  std::string hub = "localhost";
  int64_t lifetime_s = 3600;

  std::string Username() const { return hub + "/$service"; }
  std::string Password() const {
    auto k = ossl::Base64Decode(key);
    return pki::CreateSasToken(*k, hub, SystemClock().UnixSeconds() + lifetime_s, policy);
  }
};

// GatewayBackEndTest is a back end reading devices' telemetry and sending them messages through
// the broker, with mosquitto_sub and mosquitto_pub.
class GatewayBackEndTest : public GatewayTest {
 protected:
  // Owner is the back end signing with the server's service connection string (its owner policy).
  BackEnd Owner() const {
    std::string cs = server_->service_connection_string();
    return BackEnd{.policy = ConnectionStringValue(cs, "SharedAccessKeyName"),
                   .key = ConnectionStringValue(cs, "SharedAccessKey")};
  }

  std::vector<std::string> BackEndArgs(const char* tool, const BackEnd& back_end) const {
    return MqttArgs(tool, back_end.client_id, back_end.Username(), back_end.Password());
  }

  // ListenArgs subscribes back_end to filter until one message arrives, printed as "topic payload".
  std::vector<std::string> ListenArgs(const BackEnd& back_end, const std::string& filter) const {
    std::vector<std::string> args = BackEndArgs(DEVID_MOSQUITTO_SUB, back_end);
    args.insert(args.end(), {"-t", filter, "-v", "-C", "1", "-W", "30"});
    return args;
  }

  // WaitSubscribed waits until the broker has acknowledged a subscription of client_id.
  bool WaitSubscribed(const std::string& client_id) {
    return WaitFor(
               [&] {
                 return broker_->log().find("Sending SUBACK to " + client_id) != std::string::npos;
               },
               std::chrono::milliseconds(5000))
        .has_value();
  }

  CommandResult BackEndPublish(const BackEnd& back_end, const std::string& topic) {
    std::vector<std::string> args = BackEndArgs(DEVID_MOSQUITTO_PUB, back_end);
    args.insert(args.end(), {"-t", topic, "-m", "reboot"});
    return RunCommand(args);
  }

  CommandResult BackEndSubscribe(const BackEnd& back_end, const std::string& filter) {
    std::vector<std::string> args = BackEndArgs(DEVID_MOSQUITTO_SUB, back_end);
    args.insert(args.end(), {"-t", filter, "-C", "1", "-W", "1"});
    return RunCommand(args);
  }

  // Policies returns the store's service.policies setting, to show a refusal changed nothing.
  std::string Policies() {
    SystemClock clock;
    SecureRandom random;
    auto store = registry::SqliteRegistry::Open(server_->data_dir() + "/devid.db", clock, random);
    EXPECT_TRUE(store) << store.error().message();
    auto value = (*store)->GetSetting("service.policies");
    EXPECT_TRUE(value && value->has_value());
    return value && value->has_value() ? **value : "";
  }

  // AddReaderPolicy adds policy "reader" (EnrollmentRead only) with key to the store.
  void AddReaderPolicy(const std::string& key) {
    SystemClock clock;
    SecureRandom random;
    auto store = registry::SqliteRegistry::Open(server_->data_dir() + "/devid.db", clock, random);
    ASSERT_TRUE(store) << store.error().message();
    auto policies = api::PoliciesFromJson(Policies());
    ASSERT_TRUE(policies);
    policies->push_back(
        {.name = "reader", .primary_key = key, .rights = {api::ServiceRight::kEnrollmentRead}});
    ASSERT_TRUE((*store)->SetSetting("service.policies", api::PoliciesToJson(*policies),
                                     registry::Actor{"test"}));
  }

  // ExpectRefused connects as back_end, expects the broker to refuse it with why, and the store's
  // policies to be unchanged.
  void ExpectRefused(const BackEnd& back_end, const std::string& why) {
    std::string before = Policies();
    auto r = BackEndSubscribe(back_end, "devices/+/messages/events/#");
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("authori"));
    EXPECT_THAT(broker_->log(),
                HasSubstr("devid: refused client \"" + back_end.client_id +
                          "\" from 127.0.0.1: back end \"" + back_end.client_id + "\": " + why));
    EXPECT_EQ(Policies(), before);
  }
};

TEST_F(GatewayBackEndTest, BackEnd_ReceivesADevicesTelemetry) {
  Background sub(ListenArgs(Owner(), "devices/+/messages/events/#"),
                 server_->root() + "/sub-back-end.out");
  ASSERT_TRUE(WaitSubscribed(Owner().client_id)) << sub.output();
  auto r = Publish(Provisioned("dev-1"), "devices/dev-1/messages/events/%24.ct=application%2Fjson");
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ASSERT_EQ(sub.WaitExit(std::chrono::milliseconds(5000)), 0) << sub.output();
  EXPECT_EQ(sub.output(),
            "devices/dev-1/messages/events/%24.ct=application%2Fjson {\"temperature\":21.5}\n");
  EXPECT_THAT(broker_->log(), Not(HasSubstr("devid: denied")));
}

TEST_F(GatewayBackEndTest, BackEnd_SendsACloudToDeviceMessage) {
  Background device = Subscribe("dev-1");
  ASSERT_TRUE(WaitSubscribed("dev-1")) << device.output();
  auto r = BackEndPublish(Owner(), "devices/dev-1/messages/devicebound/%24.mid=c2d-1");
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ASSERT_EQ(device.WaitExit(std::chrono::milliseconds(5000)), 0) << device.output();
  EXPECT_EQ(device.output(), "reboot\n");
}

TEST_F(GatewayBackEndTest, Denies_BackEndOutsideTelemetryAndCloudToDevice) {
  for (const char* filter : {"#", "devices/#", "devices/+/messages/devicebound/#", "$iothub/#"}) {
    auto r = BackEndSubscribe(Owner(), filter);
    EXPECT_THAT(r.err, HasSubstr("All subscription requests were denied")) << filter;
    EXPECT_THAT(broker_->log(), HasSubstr("devid: denied client \"$service-test\" access 4 to \"" +
                                          std::string(filter) + "\""));
  }
  // Impersonating a device's telemetry is not a back end's to do.
  auto r = BackEndPublish(Owner(), "devices/dev-1/messages/events/");
  EXPECT_THAT(r.err, HasSubstr("ot authori"));
  EXPECT_THAT(broker_->log(), HasSubstr("devid: denied client \"$service-test\" access 2 to "
                                        "\"devices/dev-1/messages/events/\""));
}

TEST_F(GatewayBackEndTest, Denies_DeviceReadingOtherDevicesTelemetry) {
  auto r = Subscribe(Provisioned("dev-1"), "devices/+/messages/events/#");
  EXPECT_THAT(r.err, HasSubstr("All subscription requests were denied"));
  EXPECT_THAT(
      broker_->log(),
      HasSubstr("devid: denied client \"dev-1\" access 4 to \"devices/+/messages/events/#\""));
}

TEST_F(GatewayBackEndTest, ClosesBackEndSession_WhenItsTokenExpires) {
  BackEnd back_end = Owner();
  back_end.lifetime_s = 3;
  Background sub(ListenArgs(back_end, "devices/+/messages/events/#"),
                 server_->root() + "/sub-expiring-back-end.out");
  ASSERT_TRUE(WaitSubscribed(back_end.client_id)) << sub.output();
  auto closed_after = WaitFor(
      [&] {
        return broker_->log().find(
                   "devid: closing the session of client \"$service-test\": the "
                   "back end's SAS token expired") != std::string::npos;
      },
      std::chrono::milliseconds(6000));
  ASSERT_TRUE(closed_after.has_value()) << "the back end's session outlived its token";
  EXPECT_TRUE(sub.WaitExit(std::chrono::milliseconds(5000)).has_value()) << sub.output();
}

TEST_F(GatewayBackEndTest, Rejects_BackEndWithWrongKey) {
  BackEnd back_end = Owner();
  back_end.key = kOtherKey;
  back_end.client_id = "$service-wrong-key";
  ExpectRefused(back_end, "SAS token signature does not verify for policy " + back_end.policy);
}

TEST_F(GatewayBackEndTest, Rejects_BackEndWithExpiredToken) {
  BackEnd back_end = Owner();
  back_end.lifetime_s = -1;
  back_end.client_id = "$service-expired";
  ExpectRefused(back_end, "SAS token expired");
}

TEST_F(GatewayBackEndTest, Rejects_BackEndWithUnknownPolicy) {
  BackEnd back_end = Owner();
  back_end.policy = "nobody";
  back_end.client_id = "$service-unknown";
  ExpectRefused(back_end, "SAS token skn \"nobody\" names no shared access policy");
}

TEST_F(GatewayBackEndTest, Rejects_BackEndWhosePolicyLacksServiceConfig) {
  ASSERT_NO_FATAL_FAILURE(AddReaderPolicy(kOtherKey));
  ExpectRefused(BackEnd{.policy = "reader", .key = kOtherKey, .client_id = "$service-reader"},
                "policy reader lacks the ServiceConfig right");
}

TEST_F(GatewayBackEndTest, Rejects_BackEndWithADevicesClientId) {
  BackEnd back_end = Owner();
  back_end.client_id = "dev-2";
  ExpectRefused(back_end, "the client id does not start with $service");
}

TEST_F(GatewayBackEndTest, Rejects_DeviceTokenPresentedAsBackEnd) {
  Device dev1 = Provisioned("dev-1");
  BackEnd back_end{.client_id = "$service-device"};
  std::vector<std::string> args = BackEndArgs(DEVID_MOSQUITTO_SUB, back_end);
  args.back() = dev1.Password();
  args.insert(args.end(), {"-t", "devices/+/messages/events/#", "-C", "1", "-W", "1"});
  auto r = RunCommand(args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("devid: refused client \"$service-device\" from "
                                        "127.0.0.1: back end \"$service-device\": SAS token sr"));
}

}  // namespace
}  // namespace devid::testing
