// The devid plugin in a real Mosquitto 2.0 broker: a device provisioned through `devid serve`
// connects with an IoT Hub SAS token and is confined to its own topics; everyone else is refused.
// mosquitto_pub and mosquitto_sub play the devices (MQTT 5, so denials come back as reason codes).

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

#include "base/clock.h"
#include "base/url.h"
#include "dps_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"

extern char** environ;

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kGroupKey[] =
    "7aBt6S1Mv5zZ7+WQpwP8mohWPBwDmDSKmz1FiPtLpztqaXMukfgPMxOzQoWxXxvpSrGXBf4eQDnZ+FRKSVJg4A==";
constexpr char kOtherKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

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

// Broker runs `mosquitto -c <dir>/mosquitto.conf` with the devid plugin reading store_path, on a
// plain TCP listener on 127.0.0.1, logging everything to <dir>/mosquitto.log. The destructor
// stops it (SIGTERM) and prints the log when the test failed.
class Broker {
 public:
  Broker(const std::string& dir, const std::string& store_path,
         const std::vector<std::string>& extra_conf = {})
      : dir_(dir), port_(FreePort()) {
    const passwd* user = ::getpwuid(::geteuid());
    std::ofstream conf(dir_ + "/mosquitto.conf");
    conf << "per_listener_settings false\n"
         << "allow_anonymous false\n"
         << "persistence false\n"
         << "listener " << port_ << " 127.0.0.1\n"
         << "plugin " << DEVID_MOSQUITTO_PLUGIN << "\n"
         << "plugin_opt_store sqlite://" << store_path << "\n"
         << "log_dest file " << log_path() << "\n"
         << "log_type all\n"
         // As root the broker would switch to the mosquitto user, who cannot read the test's store.
         << "user " << (user != nullptr ? user->pw_name : "root") << "\n";
    for (const std::string& line : extra_conf) conf << line << "\n";
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

  // WaitListening waits up to 10 s for the listener; false when the broker exited first.
  bool WaitListening() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pid_ <= 0 || Exited()) return false;
      if (CanConnect(port_)) return true;
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
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

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
  void SetUp() override {
    auto server = ServerProcess::Start();
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
    broker_.emplace(server_->root(), server_->data_dir() + "/devid.db");
    ASSERT_TRUE(broker_->WaitListening()) << broker_->log();
  }

  void TearDown() override {
    broker_.reset();  // before the server removes its directory
    server_.reset();
  }

  static Device Provisioned(const std::string& id) {
    return Device{id, *pki::DeriveSymmetricKey(kGroupKey, id)};
  }

  // Publish sends one QoS 1 message as device (client id = device.id unless client_id is set).
  CommandResult Publish(const Device& device, const std::string& topic,
                        const std::string& client_id = "") {
    return RunCommand({DEVID_MOSQUITTO_PUB, "-h", "127.0.0.1", "-p",
                       std::to_string(broker_->port()), "-V", "mqttv5", "-q", "1", "-i",
                       client_id.empty() ? device.id : client_id, "-u", device.Username(), "-P",
                       device.Password(), "-t", topic, "-m", R"({"temperature":21.5})"});
  }

  // Subscribe subscribes as device and waits up to wait_s for one message.
  CommandResult Subscribe(const Device& device, const std::string& filter, int wait_s = 1) {
    return RunCommand({DEVID_MOSQUITTO_SUB,
                       "-h",
                       "127.0.0.1",
                       "-p",
                       std::to_string(broker_->port()),
                       "-V",
                       "mqttv5",
                       "-q",
                       "1",
                       "-i",
                       device.id,
                       "-u",
                       device.Username(),
                       "-P",
                       device.Password(),
                       "-t",
                       filter,
                       "-C",
                       "1",
                       "-W",
                       std::to_string(wait_s)});
  }

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
  auto r = RunCommand({DEVID_MOSQUITTO_PUB, "-h", "127.0.0.1", "-p",
                       std::to_string(broker_->port()), "-V", "mqttv5", "-i", "dev-1", "-t",
                       "devices/dev-1/messages/events/", "-m", "x"});
  EXPECT_NE(r.exit_code, 0);
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
  DpsClient client(*server_);
  auto disabled = client.Service(
      "PUT", "/enrollmentGroups/grp1",
      {{"enrollmentGroupId", "grp1"},
       {"provisioningStatus", "disabled"},
       {"attestation", {{"type", "symmetricKey"}, {"symmetricKey", {{"primaryKey", kGroupKey}}}}}},
      {{"if-match", "*"}});
  ASSERT_TRUE(disabled) << disabled.error().message();
  ASSERT_EQ(disabled->status, 200) << disabled->body;
  // The plugin reads the store on every connect, so the next one is refused.
  auto r = Publish(device, "devices/dev-1/messages/events/");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(broker_->log(), HasSubstr("its enrollment is disabled"));
}

TEST(GatewayPluginTest, BrokerRefusesToStart_WithBadPluginOption) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server) << server.error().message();
  Broker broker(server->root(), server->data_dir() + "/devid.db", {"plugin_opt_sotre x"});
  EXPECT_NE(broker.WaitExit(), 0);
  EXPECT_THAT(broker.log() + ReadFile(server->root() + "/mosquitto.out"),
              HasSubstr("plugin_opt_sotre"));
}

}  // namespace
}  // namespace devid::testing
