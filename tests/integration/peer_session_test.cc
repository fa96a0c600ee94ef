// Devices authenticating each other directly (docs/peers.md) against the real `devid serve`: two
// devices enrolled through EST refresh their cached CA certificates and CRLs, then the server is
// stopped and `devid peer serve` / `devid peer connect` accept each other both ways. Each refusal
// is tested: a peer revoked before the last refresh, a cache older than --max-crl-age, a
// certificate from another CA, a peer that is not the one expected, a tampered cache.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/file.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "peer_devices.h"
#include "server_process.h"

extern char** environ;

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceA[] = "peer-a";
constexpr char kDeviceB[] = "peer-b";

// ServingPeer is `devid peer serve` running in the background, its stdout in a file.
class ServingPeer {
 public:
  ServingPeer(std::vector<std::string> argv, std::string out_file)
      : out_file_(std::move(out_file)) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--count", "1"});
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, (out_file_ + ".err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ServingPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Port waits for "listening on 127.0.0.1:PORT" and returns PORT ("" when it never came).
  std::string Port() {
    for (int i = 0; i < 100; ++i) {
      std::string out = Output();
      size_t at = out.find("listening on 127.0.0.1:");
      size_t end = out.find('\n', at);
      if (at != std::string::npos && end != std::string::npos) {
        return out.substr(at + 23, end - at - 23);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "";
  }
  // Finish waits up to 5 s for the one connection to end (the peer is stopped when nobody
  // connected) and returns everything it printed.
  std::string Finish() {
    for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return Output() + Read(out_file_ + ".err");
  }

 private:
  std::string Output() const { return Read(out_file_); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string out_file_;
  pid_t pid_ = -1;
};

class PeerSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = ServerProcess::Start();
    ASSERT_TRUE(started.has_value()) << started.error().message();
    server_.emplace(std::move(*started));
    dir_ = server_->root() + "/devices";
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/passphrase", "peer key passphrase\n", 0600));
    ASSERT_NO_FATAL_FAILURE(EnrollPeerDevice(*server_, dir_, kDeviceA, kPeerKeyA));
    ASSERT_NO_FATAL_FAILURE(EnrollPeerDevice(*server_, dir_, kDeviceB, kPeerKeyB));
    Refresh(kDeviceA);
    Refresh(kDeviceB);
  }

  std::string KeyUri(const std::string& device) const { return PeerKeyUri(dir_, device); }
  std::string Certificate(const std::string& device) const { return PeerCertificate(dir_, device); }
  std::string TrustDir(const std::string& device) const { return dir_ + "/" + device + ".trust"; }

  void Refresh(const std::string& device) {
    CommandResult refreshed =
        RunCommand({DEVID_BINARY, "peer", "refresh", "--trust-dir", TrustDir(device), "--endpoint",
                    server_->device_endpoint(), "--trust-bundle", server_->trust_bundle_file()});
    ASSERT_EQ(refreshed.exit_code, 0) << Describe(refreshed);
    EXPECT_THAT(refreshed.out, HasSubstr("CRLs in " + TrustDir(device) + "/peer-trust.pem"));
  }

  std::vector<std::string> Identity(const std::string& device, const std::string& certificate,
                                    const std::string& key_uri) const {
    return {"--cert", certificate, "--key", key_uri, "--trust-dir", TrustDir(device)};
  }

  // Meet runs `devid peer serve` as server_device and `devid peer connect` as client_device;
  // it returns what each printed.
  std::pair<std::string, CommandResult> Meet(const std::string& server_device,
                                             const std::string& client_device,
                                             std::vector<std::string> serve_flags = {},
                                             std::vector<std::string> connect_flags = {},
                                             std::string server_certificate = "",
                                             std::string server_key_uri = "") {
    if (server_certificate.empty()) server_certificate = Certificate(server_device);
    if (server_key_uri.empty()) server_key_uri = KeyUri(server_device);
    std::vector<std::string> serve = {DEVID_BINARY, "peer", "serve"};
    for (const std::string& flag : Identity(server_device, server_certificate, server_key_uri)) {
      serve.push_back(flag);
    }
    serve.insert(serve.end(), serve_flags.begin(), serve_flags.end());
    ServingPeer serving(serve, dir_ + "/serve-" + server_device + ".out");
    std::string port = serving.Port();
    EXPECT_NE(port, "");
    std::vector<std::string> connect = {DEVID_BINARY, "peer", "connect", "127.0.0.1:" + port};
    for (const std::string& flag :
         Identity(client_device, Certificate(client_device), KeyUri(client_device))) {
      connect.push_back(flag);
    }
    connect.insert(connect.end(), connect_flags.begin(), connect_flags.end());
    CommandResult connected = RunCommand(connect);
    return {serving.Finish(), connected};
  }

  std::optional<ServerProcess> server_;
  std::string dir_;
};

TEST_F(PeerSessionTest, ServerStopped_DevicesAcceptEachOtherBothWays) {
  auto stopped = server_->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();

  auto [served, connected] =
      Meet(kDeviceB, kDeviceA, {"--expect", kDeviceA}, {"--expect", kDeviceB});
  ASSERT_EQ(connected.exit_code, 0) << Describe(connected) << served;
  EXPECT_THAT(connected.out, HasSubstr("accepted peer-b (serial "));
  EXPECT_THAT(connected.out, HasSubstr("peer-b says: welcome peer-a"));
  EXPECT_THAT(served, HasSubstr("accepted peer-a (serial "));
  EXPECT_THAT(served, HasSubstr("peer-a says: hello"));

  auto [served_by_a, connected_b] = Meet(kDeviceA, kDeviceB);
  ASSERT_EQ(connected_b.exit_code, 0) << Describe(connected_b) << served_by_a;
  EXPECT_THAT(connected_b.out, HasSubstr("accepted peer-a"));
  EXPECT_THAT(served_by_a, HasSubstr("accepted peer-b"));
}

TEST_F(PeerSessionTest, RevokedPeer_RefusedAfterTheNextRefresh) {
  std::string serial;
  ASSERT_EQ(RunShell("openssl x509 -in " + Certificate(kDeviceB) + " -noout -serial | cut -d= -f2",
                     &serial),
            0);
  serial.erase(serial.find_last_not_of('\n') + 1);
  CommandResult revoked =
      RunCommand({DEVID_BINARY, "cert", "revoke", "--serial", serial, "--reason", "keyCompromise",
                  "--connection", server_->connection_file()});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);
  // Before A's refresh, its cache does not know yet.
  auto [served_before, before] = Meet(kDeviceB, kDeviceA);
  EXPECT_EQ(before.exit_code, 0) << Describe(before) << served_before;

  Refresh(kDeviceA);
  auto stopped = server_->Stop();
  ASSERT_TRUE(stopped) << stopped.error().message();
  auto [served, connected] = Meet(kDeviceB, kDeviceA);
  EXPECT_EQ(connected.exit_code, 1) << Describe(connected);
  EXPECT_THAT(connected.err, HasSubstr("peer CN=peer-b refused: certificate revoked"));
  EXPECT_THAT(connected.out, Not(HasSubstr("accepted")));
}

TEST_F(PeerSessionTest, CacheOlderThanTheBound_Refused) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto [served, connected] = Meet(kDeviceB, kDeviceA, {}, {"--max-crl-age", "1s"});
  EXPECT_EQ(connected.exit_code, 1) << Describe(connected);
  EXPECT_THAT(connected.err, HasSubstr("more than the bound of 1 s (refresh from devid)"));
  // The serving side had no such bound and would have accepted A; A's refusal is final.
  auto [served_b, by_b] = Meet(kDeviceB, kDeviceA, {"--max-crl-age", "1s"});
  EXPECT_EQ(by_b.exit_code, 1) << Describe(by_b);
  EXPECT_THAT(served_b, HasSubstr("refused: peer CN=peer-a refused: the cached CRLs are"));
  EXPECT_THAT(by_b.err, HasSubstr("refused this device"));
}

TEST_F(PeerSessionTest, Rejects_MaxCrlAgeThatIsNotADuration) {
  for (const char* bad : {"-5s", "24H", "1.5h"}) {
    CommandResult r = RunCommand({DEVID_BINARY, "peer", "connect", "127.0.0.1:1", "--cert",
                                  Certificate(kDeviceA), "--key", KeyUri(kDeviceA), "--trust-dir",
                                  TrustDir(kDeviceA), "--max-crl-age", bad});
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(std::string("\"") + bad + "\" is not a duration")) << bad;
  }
}

TEST_F(PeerSessionTest, CertificateFromAnotherCa_Refused) {
  std::string other = dir_ + "/other";
  std::filesystem::create_directories(other);
  std::string script =
      "cd " + other +
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key"
      " -out ca.pem -subj /CN=Other-Root -days 30 -addext basicConstraints=critical,CA:TRUE"
      " -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null"
      " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout plain.key"
      " -out b.csr -subj /CN=peer-b 2>/dev/null"
      " && printf 'extendedKeyUsage=clientAuth\\nkeyUsage=critical,digitalSignature\\n' > ext"
      " && openssl x509 -req -in b.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30"
      " -extfile ext -out b.pem 2>/dev/null"
      " && openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.key -out b.key"
      " -passout file:" +
      dir_ + "/passphrase";
  ASSERT_EQ(RunShell(script), 0);
  auto [served, connected] =
      Meet(kDeviceB, kDeviceA, {}, {}, other + "/b.pem",
           "file:" + other + "/b.key?passphrase-file=" + dir_ + "/passphrase");
  EXPECT_EQ(connected.exit_code, 1) << Describe(connected);
  EXPECT_THAT(connected.err, HasSubstr("peer CN=peer-b refused: unable to get local issuer"));
}

TEST_F(PeerSessionTest, NotTheExpectedPeer_Refused) {
  auto [served, connected] = Meet(kDeviceB, kDeviceA, {}, {"--expect", "peer-c"});
  EXPECT_EQ(connected.exit_code, 1) << Describe(connected);
  EXPECT_THAT(connected.err, HasSubstr("it is peer-b, not the expected peer peer-c"));
  auto [served_b, by_b] = Meet(kDeviceB, kDeviceA, {"--expect", "peer-c"});
  EXPECT_EQ(by_b.exit_code, 1) << Describe(by_b);
  EXPECT_THAT(served_b,
              HasSubstr("refused: peer CN=peer-a refused: it is peer-a, not the expected"));
}

TEST_F(PeerSessionTest, TamperedCache_RefusedToLoad) {
  std::string cache = TrustDir(kDeviceA) + "/peer-trust.pem";
  auto text = ReadFile(cache);
  ASSERT_TRUE(text) << text.error().message();
  // Flip one base64 character inside the last CRL's signature.
  size_t end = text->rfind("-----END X509 CRL-----");
  ASSERT_NE(end, std::string::npos);
  std::string tampered = *text;
  char& c = tampered[end - 10];
  c = c == 'A' ? 'B' : 'A';
  ASSERT_TRUE(WriteFileAtomically(cache, tampered, 0644));
  auto [served, connected] = Meet(kDeviceB, kDeviceA);
  EXPECT_EQ(connected.exit_code, 1) << Describe(connected);
  EXPECT_THAT(connected.err, HasSubstr("loading the peer trust cache"));
  EXPECT_EQ(ReadFile(cache).value_or(""), tampered);
}

}  // namespace
}  // namespace devid::testing
