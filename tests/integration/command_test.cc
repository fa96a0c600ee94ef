// Server-signed commands end to end (docs/commands.md): `devid command send` has the real
// `devid serve` sign a command, `devid device verify-command` (the SDK's CommandVerifier) accepts
// it once and refuses every altered, misdirected, foreign or replayed envelope.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "base/file.h"
#include "dps_client.h"
#include "ossl/base64.h"
#include "registry/sqlite/connection.h"
#include "server_process.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDeviceKey[] = "lBgFsLBEAlaF/fhCOClS3EndVhAvt0mskJid4n2avLY=";

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    key_file_ = server_->root() + "/device.key";
    std::ofstream(key_file_) << kDeviceKey << "\n";
    for (const char* id : {"cmd-dev-1", "cmd-dev-2"}) {
      CommandResult enrolled = Devid({"enrollment", "add", "--registration-id", id, "--primary-key",
                                      kDeviceKey, "--connection", server_->connection_file()});
      ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
      CommandResult registered =
          Devid({"device", "register", "--symmetric-key-file", key_file_, "--registration-id", id,
                 "--id-scope", server_->id_scope(), "--endpoint", server_->device_endpoint(),
                 "--trust-bundle", server_->trust_bundle_file()});
      ASSERT_EQ(registered.exit_code, 0) << Describe(registered);
    }
  }

  CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args);
  }

  std::string Signer() const { return server_->connection().value("commandSigner", ""); }
  std::string Path(const std::string& name) const { return server_->root() + "/" + name; }

  CommandResult Send(const std::string& device, const std::string& command,
                     const std::string& out_file, int ttl = 300) {
    return Devid({"command", "send", device, "--json", command, "--ttl", std::to_string(ttl),
                  "--out", out_file, "-o", "json", "--connection", server_->connection_file()});
  }

  CommandResult Verify(const std::string& envelope_file, const std::string& device = "cmd-dev-1",
                       const std::string& signer = "") {
    return Devid({"device", "verify-command", envelope_file, "--device-id", device, "--signer",
                  signer.empty() ? Signer() : signer, "--state", Path("state-" + device)});
  }

  std::string WriteEnvelope(const std::string& name, const std::string& envelope) {
    std::string path = Path(name);
    std::ofstream(path) << envelope << "\n";
    return path;
  }

  // ExpectRefused runs verify-command on envelope and checks the reason, the message and that
  // the device's state file did not change.
  void ExpectRefused(const std::string& envelope_file, const std::string& reason,
                     const std::string& message_part, const std::string& device = "cmd-dev-1",
                     const std::string& signer = "") {
    std::string state_before = ReadFile(Path("state-" + device)).value_or("(none)");
    CommandResult r = Verify(envelope_file, device, signer);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_EQ(r.out, "") << "a refused command must print nothing on stdout";
    EXPECT_THAT(r.err, HasSubstr("command refused (" + reason + ")"));
    EXPECT_THAT(r.err, HasSubstr(message_part));
    EXPECT_EQ(ReadFile(Path("state-" + device)).value_or("(none)"), state_before);
  }

  int64_t QueryInt(const std::string& sql) {
    auto db = registry::sqlite::Connection::Open(server_->data_dir() + "/devid.db",
                                                 registry::sqlite::ConnectionOptions());
    if (!db) return -1;
    auto stmt = db->Prepare(sql);
    if (!stmt) return -1;
    auto row = (*stmt)->Step();
    return row && *row ? (*stmt)->ColumnInt64(0) : -1;
  }

  int64_t StoredCommands() { return QueryInt("SELECT COUNT(*) FROM device_commands"); }
  int64_t AuditedCommands() {
    return QueryInt("SELECT COUNT(*) FROM audit_log WHERE action = 'command.sign'");
  }

  // SignedEnvelope sends a command to device and returns its envelope.
  std::string SignedEnvelope(const std::string& device, const std::string& file) {
    CommandResult sent = Send(device, R"({"reboot":true})", Path(file));
    EXPECT_EQ(sent.exit_code, 0) << Describe(sent);
    auto envelope = ReadFile(Path(file));
    EXPECT_TRUE(envelope);
    std::string text = envelope.value_or("");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }

  static std::vector<std::string> Parts(const std::string& envelope) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t dot; (dot = envelope.find('.', start)) != std::string::npos; start = dot + 1) {
      parts.push_back(envelope.substr(start, dot - start));
    }
    parts.push_back(envelope.substr(start));
    return parts;
  }

  std::optional<ServerProcess> server_;
  std::string key_file_;
};

TEST_F(CommandTest, SendsCommandThatTheDeviceAcceptsOnce) {
  ASSERT_FALSE(Signer().empty()) << server_->connection().dump();
  CommandResult sent = Send("cmd-dev-1", R"({"reboot":{"delaySeconds":5}})", Path("cmd.jws"));
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  json info = json::parse(sent.out);
  EXPECT_EQ(info["deviceId"], "cmd-dev-1");
  EXPECT_EQ(info["sequence"], 1);
  EXPECT_FALSE(info["envelope"].get<std::string>().empty());
  EXPECT_EQ(StoredCommands(), 1);
  EXPECT_EQ(AuditedCommands(), 1);

  CommandResult accepted = Verify(Path("cmd.jws"));
  ASSERT_EQ(accepted.exit_code, 0) << Describe(accepted);
  EXPECT_EQ(accepted.out, "{\"reboot\":{\"delaySeconds\":5}}\n");
  EXPECT_EQ(
      std::filesystem::status(Path("state-cmd-dev-1")).permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  ExpectRefused(Path("cmd.jws"), "replayed", "already accepted command 1");
  // The next command is new to the device.
  SignedEnvelope("cmd-dev-1", "cmd2.jws");
  CommandResult second = Verify(Path("cmd2.jws"));
  EXPECT_EQ(second.exit_code, 0) << Describe(second);
}

TEST_F(CommandTest, SignerCertificateIsForCommandsOnly) {
  CommandResult text = RunCommand({"/usr/bin/openssl", "x509", "-in", Signer(), "-noout", "-text"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, HasSubstr("2.25.192555579891264075518482028177372816587"));
  EXPECT_THAT(text.out, HasSubstr("Digital Signature"));
  EXPECT_THAT(text.out, Not(HasSubstr("TLS Web")));
  EXPECT_THAT(text.out, Not(HasSubstr("Code Signing")));
  // Issued by devid's CA and recorded in its inventory like every certificate it issues.
  CommandResult listed =
      Devid({"cert", "list", "-o", "json", "--connection", server_->connection_file()});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr("command-signer"));
}

TEST_F(CommandTest, Rejects_CommandForAnotherDevice) {
  SignedEnvelope("cmd-dev-1", "cmd.jws");
  ExpectRefused(Path("cmd.jws"), "other-device", "for device \"cmd-dev-1\"", "cmd-dev-2");
}

TEST_F(CommandTest, Rejects_TamperedCommand) {
  std::vector<std::string> parts = Parts(SignedEnvelope("cmd-dev-1", "cmd.jws"));
  ASSERT_EQ(parts.size(), 3u);
  auto claims = ossl::Base64UrlDecode(parts[1]);
  ASSERT_TRUE(claims);
  std::string text(claims->begin(), claims->end());
  text.replace(text.find("true"), 4, "1   ");
  ExpectRefused(
      WriteEnvelope("tampered.jws", parts[0] + "." + ossl::Base64UrlEncode(text) + "." + parts[2]),
      "bad-signature", "does not verify");
}

TEST_F(CommandTest, Rejects_UnsignedCommand) {
  std::vector<std::string> parts = Parts(SignedEnvelope("cmd-dev-1", "cmd.jws"));
  std::string none =
      ossl::Base64UrlEncode(std::string_view(R"({"alg":"none","typ":"devid-command+jws"})"));
  ExpectRefused(WriteEnvelope("none.jws", none + "." + parts[1] + "."), "unsigned", "not signed");
  ExpectRefused(WriteEnvelope("stripped.jws", parts[0] + "." + parts[1] + "."), "unsigned",
                "not signed");
}

TEST_F(CommandTest, Rejects_CommandSignedByAnotherServer) {
  auto other = ServerProcess::Start();
  ASSERT_TRUE(other) << other.error().message();
  std::string other_signer = other->connection().value("commandSigner", "");
  std::string envelope = SignedEnvelope("cmd-dev-1", "cmd.jws");
  // The same envelope, checked by a device that pins the other server's signer.
  ExpectRefused(Path("cmd.jws"), "unknown-signer", "not your pinned command signer", "cmd-dev-1",
                other_signer);
}

TEST_F(CommandTest, Rejects_MalformedEnvelope) {
  ExpectRefused(WriteEnvelope("junk.jws", "hello"), "malformed", "three base64url parts");
}

TEST_F(CommandTest, Rejects_UnregisteredDeviceAndBadRequests_StoringNothing) {
  int64_t audit_before = AuditedCommands();
  CommandResult nobody = Send("cmd-nobody", R"({"reboot":true})", Path("nobody.jws"));
  EXPECT_EQ(nobody.exit_code, 1) << Describe(nobody);
  EXPECT_THAT(nobody.err, HasSubstr("404002"));
  EXPECT_THAT(nobody.err, HasSubstr("device \"cmd-nobody\" has not registered"));
  EXPECT_FALSE(std::filesystem::exists(Path("nobody.jws")));

  DpsClient client(*server_);
  ASSERT_TRUE(client.connected());
  auto not_object = client.Service("POST", "/devices/cmd-dev-1/commands", json::array({1}));
  ASSERT_TRUE(not_object);
  EXPECT_EQ(not_object->status, 400);
  EXPECT_THAT(not_object->body, HasSubstr("400011"));
  for (const char* ttl : {"0", "86401", "ten"}) {
    auto bad_ttl = client.Service("POST", std::string("/devices/cmd-dev-1/commands?ttl=") + ttl,
                                  json{{"reboot", true}});
    ASSERT_TRUE(bad_ttl);
    EXPECT_EQ(bad_ttl->status, 400) << ttl;
    EXPECT_THAT(bad_ttl->body, HasSubstr("ttl must be a whole number of seconds"));
  }
  auto too_big = client.Service("POST", "/devices/cmd-dev-1/commands",
                                json{{"blob", std::string(17 * 1024, 'x')}});
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_THAT(too_big->body, HasSubstr("413002"));
  auto wrong_key = client.ServiceAs("provisioningserviceowner",
                                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "POST",
                                    "/devices/cmd-dev-1/commands", json{{"reboot", true}});
  ASSERT_TRUE(wrong_key);
  EXPECT_EQ(wrong_key->status, 401);
  auto get = client.Service("GET", "/devices/cmd-dev-1/commands");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(StoredCommands(), 0);
  EXPECT_EQ(AuditedCommands(), audit_before);
}

TEST_F(CommandTest, AnswersWithTheBareEnvelopeWhenAskedForJose) {
  DpsClient client(*server_);
  ASSERT_TRUE(client.connected());
  auto sent = client.Service("POST", "/devices/cmd-dev-2/commands?ttl=60", json{{"ping", 1}},
                             {{"accept", "application/jose"}});
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status, 201) << sent->body;
  EXPECT_EQ(sent->HeaderValue("content-type"), "application/jose");
  EXPECT_EQ(sent->HeaderValue("x-devid-command-sequence"), "1");
  CommandResult accepted = Verify(WriteEnvelope("jose.jws", sent->body), "cmd-dev-2");
  ASSERT_EQ(accepted.exit_code, 0) << Describe(accepted);
  EXPECT_EQ(accepted.out, "{\"ping\":1}\n");
}

TEST_F(CommandTest, GivesConcurrentSendersDistinctSequences) {
  constexpr int kEach = 5;
  std::vector<int64_t> sequences[2];
  std::vector<std::thread> senders;
  for (int t = 0; t < 2; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        CommandResult sent = Send("cmd-dev-1", R"({"n":)" + std::to_string(i) + "}",
                                  Path("c-" + std::to_string(t) + "-" + std::to_string(i)));
        EXPECT_EQ(sent.exit_code, 0) << Describe(sent);
        if (sent.exit_code == 0) sequences[t].push_back(json::parse(sent.out)["sequence"]);
      }
    });
  }
  for (auto& sender : senders) sender.join();
  std::set<int64_t> all(sequences[0].begin(), sequences[0].end());
  all.insert(sequences[1].begin(), sequences[1].end());
  ASSERT_EQ(all.size(), static_cast<size_t>(2 * kEach)) << "a sequence number was handed out twice";
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), 2 * kEach);
  EXPECT_EQ(StoredCommands(), 2 * kEach);
}

TEST_F(CommandTest, KeepsSignerAcrossRestart) {
  std::string before = ReadFile(Signer()).value_or("");
  ASSERT_FALSE(before.empty());
  ASSERT_TRUE(server_->Restart());
  EXPECT_EQ(ReadFile(Signer()).value_or(""), before);
  std::string envelope = SignedEnvelope("cmd-dev-1", "after-restart.jws");
  CommandResult accepted = Verify(Path("after-restart.jws"));
  EXPECT_EQ(accepted.exit_code, 0) << Describe(accepted);
}

// Two nodes configured with one command signing key ([ca] command_signer_key_uri), as a
// scale-out deployment shares a key: each issues its own certificate for it, and a device that
// pins node A's accepts what node B signs.
TEST_F(CommandTest, Accepts_CommandFromAnotherNodeSharingTheKey) {
  std::string shared = Path("shared");
  std::filesystem::create_directories(shared);
  std::ofstream(shared + "/passphrase") << "a passphrase only the two nodes read\n";
  std::filesystem::permissions(shared + "/passphrase", std::filesystem::perms::owner_read |
                                                           std::filesystem::perms::owner_write);
  ServerProcessOptions options;
  options.config_toml = "[ca]\ncommand_signer_key_uri = \"file:" + shared +
                        "/signer.key?passphrase-file=" + shared + "/passphrase\"\n";
  auto a = ServerProcess::Start(options);
  ASSERT_TRUE(a) << a.error().message();
  auto b = ServerProcess::Start(options);
  ASSERT_TRUE(b) << b.error().message();
  std::string a_signer = a->connection().value("commandSigner", "");
  std::string b_signer = b->connection().value("commandSigner", "");
  ASSERT_NE(ReadFile(a_signer).value_or("a"), ReadFile(b_signer).value_or("b"));
  for (const ServerProcess* node : {&*a, &*b}) {
    ASSERT_EQ(Devid({"enrollment", "add", "--registration-id", "cmd-dev-1", "--primary-key",
                     kDeviceKey, "--connection", node->connection_file()})
                  .exit_code,
              0);
    CommandResult registered =
        Devid({"device", "register", "--symmetric-key-file", key_file_, "--registration-id",
               "cmd-dev-1", "--id-scope", node->id_scope(), "--endpoint", node->device_endpoint(),
               "--trust-bundle", node->trust_bundle_file()});
    ASSERT_EQ(registered.exit_code, 0) << Describe(registered);
  }
  CommandResult sent = Devid({"command", "send", "cmd-dev-1", "--json", R"({"from":"b"})", "--out",
                              Path("from-b.jws"), "--connection", b->connection_file()});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  CommandResult accepted = Verify(Path("from-b.jws"), "cmd-dev-1", a_signer);
  EXPECT_EQ(accepted.exit_code, 0) << Describe(accepted);
  EXPECT_EQ(accepted.out, "{\"from\":\"b\"}\n");
  // The device's own server's signer still refuses a stranger's key.
  ExpectRefused(Path("from-b.jws"), "unknown-signer", "none of its keys", "cmd-dev-1", Signer());
}

}  // namespace
}  // namespace devid::testing
