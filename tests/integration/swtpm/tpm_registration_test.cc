// The DPS TPM flow (protocol notes §4.2) with a real TPM: swtpm in socket mode, driven by
// tpm2-tools the way a device's TPM stack drives it, against the real `devid serve`. The blob the
// server builds in software must pass the TPM's own TPM2_ActivateCredential, TPM2_Import and
// TPM2_Load, and the HMAC computed inside the TPM must sign the device's SAS token.
//
// Needs swtpm, swtpm-tools and tpm2-tools (scripts/install-deps.sh); a missing tool fails.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/clock.h"
#include "base/random.h"
#include "base/url.h"
#include "net/https_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"
#include "tpm/public_area.h"
#include "tpm/testing/software_tpm.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// Which finds a program on PATH ("" when absent).
std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool PortFree(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// FreePortPair returns a port P with P and P+1 free: the swtpm TCTI finds the control channel at
// the command port + 1.
uint16_t FreePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port != 0 && port < 65535 && PortFree(port) && PortFree(port + 1)) return port;
  }
  return 0;
}

// Swtpm is one software TPM 2.0 in socket mode with its state in dir, started as a daemon (it
// forks once its sockets listen) and stopped by the destructor. Tool runs a tpm2-tools command
// against it.
class Swtpm {
 public:
  static std::unique_ptr<Swtpm> Start(const std::filesystem::path& dir) {
    std::string swtpm = Which("swtpm");
    EXPECT_FALSE(swtpm.empty()) << "swtpm is not installed (scripts/install-deps.sh)";
    if (swtpm.empty()) return nullptr;
    std::filesystem::create_directories(dir / "state");
    auto tpm = std::unique_ptr<Swtpm>(new Swtpm(dir));
    for (int attempt = 0; attempt < 5 && tpm->pid_ <= 0; ++attempt) {
      tpm->port_ = FreePortPair();
      std::string port = std::to_string(tpm->port_), ctrl = std::to_string(tpm->port_ + 1);
      CommandResult r = RunCommand({swtpm, "socket", "--tpm2", "--daemon", "--server",
                                    "type=tcp,port=" + port + ",bindaddr=127.0.0.1", "--ctrl",
                                    "type=tcp,port=" + ctrl + ",bindaddr=127.0.0.1", "--tpmstate",
                                    "dir=" + (dir / "state").string(), "--pid",
                                    "file=" + (dir / "swtpm.pid").string(), "--flags",
                                    "not-need-init,startup-clear"});
      if (r.exit_code == 0) tpm->pid_ = std::atoi(ReadFile(dir / "swtpm.pid").c_str());
    }
    EXPECT_GT(tpm->pid_, 0) << "swtpm did not start";
    if (tpm->pid_ <= 0) return nullptr;
    return tpm;
  }

  ~Swtpm() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }

  // Tool runs tpm2_<name> args against this TPM; a failure is a test failure with its stderr.
  std::string Tool(const std::string& name, std::vector<std::string> args) {
    std::string path = Which("tpm2_" + name);
    EXPECT_FALSE(path.empty()) << "tpm2_" << name
                               << " is not installed (tpm2-tools, scripts/install-deps.sh)";
    if (path.empty()) return "";
    args.insert(args.begin(), path);
    CommandResult r = RunCommand(args, {"TPM2TOOLS_TCTI=" + Tcti()});
    last_exit_ = r.exit_code;
    last_err_ = r.err;
    return r.out;
  }
  bool ok() const { return last_exit_ == 0; }
  const std::string& err() const { return last_err_; }

  std::string Tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path File(const std::string& name) const { return dir_ / name; }

  // ProvisionAzureKeys creates the EK and SRK at Azure's handles and templates (protocol notes
  // §4.1) and returns their TPM2B_PUBLIC bytes.
  void ProvisionAzureKeys(std::string& ek, std::string& srk) {
    Tool("createek", {"-c", "0x81010001", "-G", "rsa", "-u", File("ek.pub")});
    ASSERT_TRUE(ok()) << err();
    Tool("createprimary", {"-C", "o", "-g", "sha256", "-G", "rsa2048:null:aes128cfb", "-a",
                           "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|"
                           "userwithauth|noda",
                           "-c", File("srk.ctx")});
    ASSERT_TRUE(ok()) << err();
    Tool("evictcontrol", {"-C", "o", "-c", File("srk.ctx"), "0x81000001"});
    ASSERT_TRUE(ok()) << err();
    Tool("readpublic", {"-c", "0x81000001", "-o", File("srk.pub")});
    ASSERT_TRUE(ok()) << err();
    FlushTransients();
    ek = ReadFile(File("ek.pub"));
    srk = ReadFile(File("srk.pub"));
  }

  // ActivateBlob does what a DPS device does with an activation blob (§4.3): ActivateCredential
  // with the EK under a PolicySecret(endorsement) session, Import under the SRK with the
  // recovered inner key, Load. Returns false (with err()) when the TPM refuses a step.
  bool ActivateBlob(const std::string& blob) {
    std::vector<std::string> fields;
    for (size_t i = 0; i + 2 <= blob.size();) {
      size_t n = static_cast<uint8_t>(blob[i]) << 8 | static_cast<uint8_t>(blob[i + 1]);
      fields.push_back(blob.substr(i, 2 + n));  // each field keeps its TPM2B size
      i += 2 + n;
    }
    if (fields.size() != 6) {
      last_err_ = "the blob has " + std::to_string(fields.size()) + " fields, not 6";
      return false;
    }
    // tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
    // TPM2B_ENCRYPTED_SECRET.
    WriteFile(File("cred.blob"),
              std::string("\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) + fields[0] + fields[1]);
    WriteFile(File("dup.priv"), fields[2]);
    WriteFile(File("seed.bin"), fields[3]);
    WriteFile(File("id.pub"), fields[4]);
    FlushTransients();
    Tool("startauthsession", {"--policy-session", "-S", File("session.ctx")});
    if (!ok()) return false;
    Tool("policysecret", {"-S", File("session.ctx"), "-c", "e"});
    if (!ok()) return false;
    Tool("activatecredential",
         {"-c", "0x81000001", "-C", "0x81010001", "-i", File("cred.blob"), "-o", File("inner.key"),
          "-P", "session:" + File("session.ctx").string()});
    bool activated = ok();
    std::string activate_err = err();
    Tool("flushcontext", {File("session.ctx")});
    if (!activated) {
      last_err_ = activate_err;
      last_exit_ = 1;
      return false;
    }
    Tool("import", {"-C", "0x81000001", "-u", File("id.pub"), "-i", File("dup.priv"), "-s",
                    File("seed.bin"), "-k", File("inner.key"), "-r", File("id.priv")});
    if (!ok()) return false;
    Tool("load",
         {"-C", "0x81000001", "-u", File("id.pub"), "-r", File("id.priv"), "-c", File("id.ctx")});
    return ok();
  }

  // FlushTransients frees the TPM's object and session slots: with no resource manager between
  // the tools and swtpm, objects the tools load stay loaded (swtpm has three slots).
  void FlushTransients() {
    Tool("flushcontext", {"-t"});
    Tool("flushcontext", {"-s"});
  }

  // Hmac signs data with the loaded identity key inside the TPM (TPM2_HMAC, SHA-256).
  std::vector<uint8_t> Hmac(std::string_view data) {
    WriteFile(File("msg.bin"), data);
    FlushTransients();
    Tool("hmac", {"-c", File("id.ctx"), "-g", "sha256", "-o", File("hmac.bin"), File("msg.bin")});
    std::string mac = ReadFile(File("hmac.bin"));
    return std::vector<uint8_t>(mac.begin(), mac.end());
  }

 private:
  explicit Swtpm(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  int last_exit_ = -1;
  std::string last_err_;
};

std::string ConnectionValue(const std::string& connection_string, const std::string& name) {
  std::string key = name + "=";
  size_t at = connection_string.find(key);
  if (at == std::string::npos) return "";
  size_t end = connection_string.find(';', at);
  return connection_string.substr(at + key.size(),
                                  end == std::string::npos ? end : end - at - key.size());
}

class SwtpmRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SecureRandom random;
    root_ = std::filesystem::path(::testing::TempDir()) / ("devid-swtpm-" + random.Hex(6));
    std::filesystem::create_directories(root_);
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    net::ClientTlsOptions tls;
    tls.trust_bundle_pem = server_->trust_bundle_pem();
    tls.server_name = "localhost";
    auto client = net::HttpsClient::Connect("127.0.0.1", server_->port(), tls);
    ASSERT_TRUE(client) << client.error().message();
    client_.emplace(std::move(*client));
  }

  void TearDown() override {
    tpms_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  Swtpm* NewTpm(const std::string& name) {
    auto tpm = Swtpm::Start(root_ / name);
    tpms_.push_back(std::move(tpm));
    return tpms_.back().get();
  }

  api::Response Service(const std::string& method, const std::string& path, const json& body) {
    std::string cs = server_->service_connection_string();
    auto key = ossl::Base64Decode(ConnectionValue(cs, "SharedAccessKey"));
    std::string token = pki::CreateSasToken(*key, ConnectionValue(cs, "HostName"),
                                            SystemClock().UnixSeconds() + 600,
                                            ConnectionValue(cs, "SharedAccessKeyName"));
    auto r = client_->Send(
        method, path + "?api-version=2021-10-01",
        {{"authorization", token}, {"content-type", "application/json; charset=utf-8"}},
        body.dump());
    EXPECT_TRUE(r) << r.error().message();
    return r.value_or(api::Response{});
  }

  api::Response Device(const std::string& method, const std::string& target,
                       const std::string& authorization, const std::string& body) {
    std::vector<api::Header> headers = {{"content-type", "application/json; charset=utf-8"}};
    if (!authorization.empty()) headers.emplace_back("authorization", authorization);
    auto r = client_->Send(method, "/" + server_->id_scope() + target, headers, body);
    EXPECT_TRUE(r) << r.error().message();
    return r.value_or(api::Response{});
  }

  api::Response Register(const std::string& reg_id, const std::string& authorization,
                         const std::string& body) {
    return Device("PUT", "/registrations/" + reg_id + "/register?api-version=2019-03-31",
                  authorization, body);
  }

  // TpmToken signs the DPS SAS token inside the TPM as the Node TPM client does (§4.2 step 3).
  std::string TpmToken(Swtpm& tpm, const std::string& reg_id) {
    std::string sr = PercentEncodeComponent(server_->id_scope() + "/registrations/" + reg_id);
    int64_t se = SystemClock().UnixSeconds() + 600;
    std::vector<uint8_t> sig = tpm.Hmac(sr + "\n" + std::to_string(se));
    return "SharedAccessSignature sr=" + sr +
           "&sig=" + PercentEncodeComponent(ossl::Base64Encode(sig)) + "&se=" + std::to_string(se) +
           "&skn=registration";
  }

  static std::string Body(const std::string& reg_id, const std::string& ek,
                          const std::string& srk) {
    return json{
        {"registrationId", reg_id},
        {"tpm",
         {{"endorsementKey", ossl::Base64Encode(ek)}, {"storageRootKey", ossl::Base64Encode(srk)}}}}
        .dump();
  }

  // Enroll enrolls the EK by the service API under Azure's default registration ID (§4.1).
  std::string Enroll(const std::string& ek) {
    std::string reg_id = tpm::RegistrationIdFromEk(
        std::span(reinterpret_cast<const uint8_t*>(ek.data()), ek.size()));
    api::Response r =
        Service("PUT", "/enrollments/" + reg_id,
                {{"registrationId", reg_id},
                 {"attestation",
                  {{"type", "tpm"}, {"tpm", {{"endorsementKey", ossl::Base64Encode(ek)}}}}}});
    EXPECT_EQ(r.status, 200) << r.body;
    return reg_id;
  }

  // EnrollByCli enrolls the TPM whose EK and SRK files are in its directory with `devid
  // enrollment add --tpm-ek --tpm-srk` and no registration ID, and returns the ID the CLI chose.
  std::string EnrollByCli(const Swtpm& tpm) {
    CommandResult r = RunCommand(
        {DEVID_BINARY, "enrollment", "add", "--tpm-ek", tpm.File("ek.pub").string(), "--tpm-srk",
         tpm.File("srk.pub").string(), "-o", "json", "--connection", server_->connection_file()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json out = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(out.is_object()) << r.out;
    if (!out.is_object()) return "";
    EXPECT_EQ(out["attestation"]["type"], "tpm");
    return out.value("registrationId", "");
  }

  std::filesystem::path root_;
  std::optional<ServerProcess> server_;
  std::optional<net::HttpsClient> client_;
  std::vector<std::unique_ptr<Swtpm>> tpms_;
};

TEST_F(SwtpmRegistrationTest, Registers_WithBlobActivatedImportedAndUsedInsideSwtpm) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  // tpm2-tools made these with the TCG/Azure templates: the sizes the protocol notes observed.
  EXPECT_EQ(ek.size(), 316u);
  EXPECT_EQ(srk.size(), 284u);
  std::string reg_id = EnrollByCli(*tpm);
  // The CLI's default is Azure's rule (protocol notes §4.1), as the device SDKs compute it.
  EXPECT_EQ(reg_id, tpm::RegistrationIdFromEk(
                        std::span(reinterpret_cast<const uint8_t*>(ek.data()), ek.size())));

  api::Response challenge = Register(reg_id, "", Body(reg_id, ek, srk));
  ASSERT_EQ(challenge.status, 401) << challenge.body;
  json answer = json::parse(challenge.body);
  EXPECT_EQ(answer["keyName"], "registration");
  auto blob = ossl::Base64Decode(answer["authenticationKey"].get<std::string>());
  ASSERT_TRUE(blob);
  ASSERT_TRUE(tpm->ActivateBlob(std::string(blob->begin(), blob->end()))) << tpm->err();

  std::string token = TpmToken(*tpm, reg_id);
  api::Response registered = Register(reg_id, token, Body(reg_id, ek, srk));
  ASSERT_EQ(registered.status, 202) << registered.body;
  std::string operation = json::parse(registered.body)["operationId"];

  api::Response done = Device(
      "GET", "/registrations/" + reg_id + "/operations/" + operation + "?api-version=2019-03-31",
      token, "{}");
  ASSERT_EQ(done.status, 200) << done.body;
  json state = json::parse(done.body)["registrationState"];
  EXPECT_EQ(state["status"], "assigned");
  EXPECT_EQ(state["deviceId"], reg_id);
  // The final answer wraps the same key again: the TPM imports it and signs the same token.
  auto final_blob = ossl::Base64Decode(state["tpm"]["authenticationKey"].get<std::string>());
  ASSERT_TRUE(final_blob);
  std::vector<uint8_t> before = tpm->Hmac("same key?");
  ASSERT_TRUE(tpm->ActivateBlob(std::string(final_blob->begin(), final_blob->end()))) << tpm->err();
  EXPECT_EQ(tpm->Hmac("same key?"), before);

  // The challenge is used up: the same answer again is refused.
  api::Response replay = Register(reg_id, token, Body(reg_id, ek, srk));
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_THAT(replay.body, HasSubstr("no pending TPM challenge"));
}

TEST_F(SwtpmRegistrationTest, Rejects_BlobActivatedOnAnotherTpm) {
  Swtpm* device = NewTpm("device");
  Swtpm* impostor = NewTpm("impostor");
  ASSERT_NE(device, nullptr);
  ASSERT_NE(impostor, nullptr);
  std::string ek, srk, other_ek, other_srk;
  ASSERT_NO_FATAL_FAILURE(device->ProvisionAzureKeys(ek, srk));
  ASSERT_NO_FATAL_FAILURE(impostor->ProvisionAzureKeys(other_ek, other_srk));
  std::string reg_id = Enroll(ek);

  // The impostor names the enrolled EK (public) and its own SRK; the blob is bound to the
  // enrolled EK, so the impostor's TPM cannot activate it.
  api::Response challenge = Register(reg_id, "", Body(reg_id, ek, other_srk));
  ASSERT_EQ(challenge.status, 401) << challenge.body;
  auto blob =
      ossl::Base64Decode(json::parse(challenge.body)["authenticationKey"].get<std::string>());
  ASSERT_TRUE(blob);
  EXPECT_FALSE(impostor->ActivateBlob(std::string(blob->begin(), blob->end())));
  // Whatever key the impostor signs with, the server refuses and stores nothing.
  Swtpm* signer = NewTpm("signer");
  ASSERT_NE(signer, nullptr);
  std::string s_ek, s_srk;
  ASSERT_NO_FATAL_FAILURE(signer->ProvisionAzureKeys(s_ek, s_srk));
  std::string s_id = Enroll(s_ek);
  api::Response own = Register(s_id, "", Body(s_id, s_ek, s_srk));
  auto own_blob = ossl::Base64Decode(json::parse(own.body)["authenticationKey"].get<std::string>());
  ASSERT_TRUE(signer->ActivateBlob(std::string(own_blob->begin(), own_blob->end())))
      << signer->err();
  api::Response refused = Register(reg_id, TpmToken(*signer, reg_id), Body(reg_id, ek, other_srk));
  EXPECT_EQ(refused.status, 401) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("does not verify with the TPM challenge key"));
}

TEST_F(SwtpmRegistrationTest, Rejects_CliEnrollmentWithoutIdOrWithAFileThatIsNoEk) {
  CommandResult no_id =
      RunCommand({DEVID_BINARY, "enrollment", "add", "--connection", server_->connection_file()});
  EXPECT_NE(no_id.exit_code, 0);
  EXPECT_THAT(no_id.err, HasSubstr("--registration-id is required"));
  WriteFile(root_ / "not-an-ek.pub", "hello");
  CommandResult bad =
      RunCommand({DEVID_BINARY, "enrollment", "add", "--tpm-ek", (root_ / "not-an-ek.pub").string(),
                  "--connection", server_->connection_file()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("--tpm-ek"));
  EXPECT_THAT(bad.err, HasSubstr("TPM2B_PUBLIC"));
}

// The unit tests' device side (tpm/testing/software_tpm.h) is the oracle for devid's blobs, so
// it must accept what the TCG tools make: tpm2_makecredential without a TPM (--tcti none).
TEST(SoftwareTpmCrossCheck, Activates_CredentialMadeByTpm2Makecredential) {
  std::string tool = Which("tpm2_makecredential");
  ASSERT_FALSE(tool.empty()) << "tpm2-tools is not installed (scripts/install-deps.sh)";
  SecureRandom random;
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("devid-makecredential-" + random.Hex(6));
  std::filesystem::create_directories(dir);
  tpm::testing::SoftwareTpm device;
  tpm::Bytes ek = device.ek().Tpm2b();
  WriteFile(dir / "ek.pub", std::string(ek.begin(), ek.end()));
  std::vector<uint8_t> secret = random.Bytes(16);
  WriteFile(dir / "secret.bin", std::string(secret.begin(), secret.end()));
  tpm::Bytes name = *device.srk().Name();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name_hex;
  for (uint8_t b : name) name_hex += std::string{kHex[b >> 4], kHex[b & 15]};

  CommandResult r = RunCommand({tool, "--tcti", "none", "-u", (dir / "ek.pub").string(), "-s",
                                (dir / "secret.bin").string(), "-n", name_hex, "-o",
                                (dir / "cred.out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string out = ReadFile(dir / "cred.out");
  std::filesystem::remove_all(dir);
  // magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET
  ASSERT_GT(out.size(), 8u);
  tpm::Reader reader(std::span(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  ASSERT_EQ(*reader.U32("magic"), 0xBADCC0DEu);
  ASSERT_EQ(*reader.U32("version"), 1u);
  auto id_object = reader.B2("TPM2B_ID_OBJECT");
  auto encrypted_secret = reader.B2("TPM2B_ENCRYPTED_SECRET");
  ASSERT_TRUE(id_object && encrypted_secret);
  auto recovered = device.ActivateCredential(name, *id_object, *encrypted_secret);
  ASSERT_TRUE(recovered) << recovered.error().message();
  EXPECT_EQ(*recovered, secret);
}

}  // namespace
}  // namespace devid::testing
