// No key material in what the device side writes (issue 6): a device registers with a symmetric
// key and with an X.509 key in an encrypted file, renews its certificate and checks a
// server-signed command, all through `devid device` with debug logging on both sides; then
// every output, the server's log and every file the device side wrote are searched for the
// symmetric key, the private scalars, the passphrase and unencrypted private keys.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "ossl/base64.h"
#include "server_process.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSymmetricKey[] = "q3Zf8N0uXc5PaTq8i6Wv1Xy2mB7hJk4LrDs9eGtUoVw=";
// kReplacedKey is a primary key the operator has since replaced: the service rejects it.
constexpr char kReplacedKey[] = "Vb4fQ0Xk2m9LsE7tR1yP6uJ8cN3hW5aZdG0iKoTqUxM=";
constexpr char kPassphrase[] = "no-leak passphrase 91c2";
constexpr char kDevice[] = "no-leak-sas-1";
constexpr char kX509Device[] = "no-leak-x509-1";

// Secret is one piece of key material in every form it could leak in.
struct Secret {
  std::string name;
  std::vector<std::string> forms;
};

std::string Hex(const std::string& bytes, bool upper, const std::string& separator = "") {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += separator;
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Secret BytesSecret(const std::string& name, const std::string& raw) {
  return {name,
          {raw, Hex(raw, false), Hex(raw, true), Hex(raw, false, ":"), ossl::Base64Encode(raw)}};
}

// SymmetricSecret is a base64 symmetric key, which BytesSecret's forms include.
Secret SymmetricSecret(const std::string& name, const std::string& key_base64) {
  std::vector<uint8_t> raw = ossl::Base64Decode(key_base64).value();
  return BytesSecret(name, std::string(raw.begin(), raw.end()));
}

bool Contains(const std::string& text, const Secret& secret) {
  return std::any_of(secret.forms.begin(), secret.forms.end(),
                     [&](const std::string& form) { return text.find(form) != std::string::npos; });
}

// PrivateScalar reads the EC private scalar of an encrypted PKCS #8 key file through openssl.
std::string PrivateScalar(const std::string& key_file) {
  std::string text;
  EXPECT_EQ(
      RunShell("openssl pkey -noout -text -in " + key_file + " -passin 'pass:" + kPassphrase + "'",
               &text),
      0)
      << text;
  size_t begin = text.find("priv:");
  size_t end = text.find("pub:");
  if (begin == std::string::npos || end == std::string::npos) return "";
  std::string hex;
  for (char c : text.substr(begin + 5, end - begin - 5)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += c;
  }
  EXPECT_EQ(hex.size(), 64u) << "a P-256 scalar is 32 bytes";
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return raw;
}

class NoKeyMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start(ServerProcessOptions{.env = {"SPDLOG_LEVEL=debug"}});
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    // The device writes only under device/; what it is given lives under given/.
    std::filesystem::create_directories(Device(""));
    std::filesystem::create_directories(server_->root() + "/given");
    std::ofstream(Given("sas.key")) << kSymmetricKey << "\n";
    std::ofstream(Given("replaced.key")) << kReplacedKey << "\n";
  }

  std::string Device(const std::string& name) const { return server_->root() + "/device/" + name; }
  std::string Given(const std::string& name) const { return server_->root() + "/given/" + name; }
  std::string KeyUri(const std::string& name) const {
    return "file:" + Device(name) + "?passphrase-env=DEVID_DEVICE_PASSPHRASE";
  }

  // Run runs devid with debug logging and the key's passphrase in its environment, keeps what
  // it printed for the search, and expects it to succeed.
  CommandResult Run(const std::string& what, std::vector<std::string> args) {
    CommandResult r =
        Devid(std::move(args),
              {"SPDLOG_LEVEL=debug", std::string("DEVID_DEVICE_PASSPHRASE=") + kPassphrase});
    EXPECT_EQ(r.exit_code, 0) << what << ": " << Describe(r);
    outputs_.push_back({what + " (stdout)", r.out});
    outputs_.push_back({what + " (stderr)", r.err});
    return r;
  }

  std::vector<std::string> Connect() const {
    return {"--id-scope",     server_->id_scope(),         "--endpoint", server_->device_endpoint(),
            "--trust-bundle", server_->trust_bundle_file()};
  }

  static void ExpectAbsent(const std::string& where, const std::string& text,
                           const std::vector<Secret>& secrets) {
    for (const Secret& secret : secrets) {
      EXPECT_FALSE(Contains(text, secret)) << secret.name << " found in " << where;
    }
  }

  std::optional<ServerProcess> server_;
  std::vector<std::pair<std::string, std::string>> outputs_;
};

TEST_F(NoKeyMaterialTest, RegisterRenewAndCommand_WriteNoKeyMaterial) {
  // A symmetric-key device registers and remembers its hub.
  CommandResult added = Devid({"enrollment", "add", "--registration-id", kDevice, "--primary-key",
                               kSymmetricKey, "--connection", server_->connection_file()});
  ASSERT_EQ(added.exit_code, 0) << Describe(added);
  std::vector<std::string> sas = {
      "device", "register", "--symmetric-key-file",       Given("sas.key"), "--registration-id",
      kDevice,  "--state",  Device("sas-assignment.json")};
  const std::vector<std::string> connect = Connect();
  sas.insert(sas.end(), connect.begin(), connect.end());
  Run("register --symmetric-key-file", sas);
  // The rollover path: the first key is refused, the secondary accepted.
  std::vector<std::string> rollover = {"device",
                                       "register",
                                       "--symmetric-key-file",
                                       Given("replaced.key"),
                                       "--secondary-key-file",
                                       Given("sas.key"),
                                       "--registration-id",
                                       kDevice,
                                       "--state",
                                       Device("sas-assignment.json")};
  rollover.insert(rollover.end(), connect.begin(), connect.end());
  CommandResult rolled = Run("register --secondary-key-file", rollover);
  EXPECT_THAT(rolled.err, HasSubstr("accepted the secondary one"));

  // An X.509 device: its key made in an encrypted file, certified by the server's CA, then
  // registered with a second key certified at registration.
  Run("device key create", {"device", "key", "create", "--key", KeyUri("device.key")});
  Run("device key create (csr key)", {"device", "key", "create", "--key", KeyUri("next.key")});
  Run("device csr", {"device", "csr", "--key", KeyUri("device.key"), "--registration-id",
                     kX509Device, "--out", Device("device.csr")});
  Run("device csr (registration)", {"device", "csr", "--key", KeyUri("next.key"),
                                    "--registration-id", kX509Device, "--out", Device("next.csr")});
  CommandResult issued = Devid({"ca", "issue", "--data-dir", server_->data_dir(), "--csr",
                                Device("device.csr"), "--out", Device("device.pem")});
  ASSERT_EQ(issued.exit_code, 0) << Describe(issued);
  ASSERT_TRUE(EnrollCertificate(*server_, kX509Device, ReadFile(Device("device.pem")).value()));
  std::string first_scalar = PrivateScalar(Device("device.key"));
  std::string next_scalar = PrivateScalar(Device("next.key"));
  ASSERT_EQ(first_scalar.size(), 32u);
  // The control: decrypted, the key file does hold the scalar the search looks for.
  std::string decrypted;
  ASSERT_EQ(RunShell("openssl pkey -outform DER -in " + Device("device.key") +
                         " -passin 'pass:" + kPassphrase + "' -out " + Given("plain.der"),
                     &decrypted),
            0)
      << decrypted;
  EXPECT_TRUE(
      Contains(ReadFile(Given("plain.der")).value_or(""), BytesSecret("the scalar", first_scalar)));

  std::vector<std::string> x509 = {"device",
                                   "register",
                                   "--x509",
                                   "--cert",
                                   Device("device.pem"),
                                   "--key",
                                   KeyUri("device.key"),
                                   "--csr",
                                   Device("next.csr"),
                                   "--issued-cert-out",
                                   Device("issued.pem"),
                                   "--state",
                                   Device("x509-assignment.json")};
  x509.insert(x509.end(), connect.begin(), connect.end());
  Run("register --x509", x509);

  // Renewal with a new key, then the certificate as a technician sees it.
  Run("device renew", {"device", "renew", "--cert", Device("device.pem"), "--key",
                       KeyUri("device.key"), "--endpoint", server_->device_endpoint(),
                       "--trust-bundle", server_->trust_bundle_file(), "--force"});
  Run("device show --cert", {"device", "show", "--cert", Device("device.pem")});
  std::string renewed_scalar = PrivateScalar(Device("device.key"));
  ASSERT_EQ(renewed_scalar.size(), 32u);
  EXPECT_NE(renewed_scalar, first_scalar) << "renewal makes a new key by default";

  // A server-signed command, checked by the device.
  CommandResult sent = Devid({"command", "send", kDevice, "--json", R"({"reboot":true})", "--out",
                              Given("reboot.jws"), "--connection", server_->connection_file()});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  Run("device verify-command",
      {"device", "verify-command", Given("reboot.jws"), "--device-id", kDevice, "--signer",
       server_->connection().value("commandSigner", ""), "--state", Device("commands.json")});

  std::vector<Secret> secrets = {
      SymmetricSecret("the symmetric key", kSymmetricKey),
      SymmetricSecret("the replaced symmetric key", kReplacedKey),
      BytesSecret("the first device key's private scalar", first_scalar),
      BytesSecret("the renewed device key's private scalar", renewed_scalar),
      BytesSecret("the registration CSR key's private scalar", next_scalar),
      {"the key passphrase", {kPassphrase}},
  };

  // What the commands printed and what the server logged.
  for (const auto& [where, text] : outputs_) {
    ExpectAbsent(where, text, secrets);
    EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY"))) << where;
  }
  std::string log = server_->log();
  EXPECT_THAT(log, HasSubstr(kDevice)) << "the server logged at debug level";
  ExpectAbsent("the server log", log, secrets);
  EXPECT_THAT(log, Not(HasSubstr("PRIVATE KEY")));

  // Every file the device side wrote; key files hold their key encrypted only.
  std::vector<std::string> written;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(Device(""))) {
    if (!entry.is_regular_file()) continue;
    std::string path = entry.path().string();
    written.push_back(entry.path().filename().string());
    std::string text = ReadFile(path).value_or("");
    ExpectAbsent(path, text, secrets);
    if (path.ends_with(".key")) {
      EXPECT_THAT(text, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----")) << path;
      EXPECT_THAT(text, Not(HasSubstr("-----BEGIN PRIVATE KEY-----"))) << path;
      EXPECT_THAT(text, Not(HasSubstr("-----BEGIN EC PRIVATE KEY-----"))) << path;
    } else {
      EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY"))) << path;
    }
  }
  std::sort(written.begin(), written.end());
  EXPECT_THAT(written,
              ::testing::IsSupersetOf({"sas-assignment.json", "x509-assignment.json", "device.key",
                                       "device.pem", "issued.pem", "commands.json"}))
      << "the search covered the files the SDK writes";
}

}  // namespace
}  // namespace devid::testing
