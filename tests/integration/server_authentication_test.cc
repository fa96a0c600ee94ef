// One-way authentication, enforced by the device SDK (`devid device register --x509`): the device
// trusts one root and refuses a real `devid serve` whose TLS certificate is from another CA, names
// another host, or has expired, each before it sends a byte of its registration. The server's
// certificates are made with openssl and swapped under [tls]; after each refusal the server,
// restarted with its good certificate, holds no registration for the device.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/file.h"
#include "dps_client.h"
#include "keys/testing/softhsm_token.h"  // RunShell
#include "server_process.h"
#include "vendor_pki.h"
#include "x509_device.h"

namespace devid::testing {
namespace {

using keys::testing::RunShell;
using ::testing::HasSubstr;

// The server certificates: from the root the device trusts (good, for another name, expired) and
// from a root it does not; and a device CA whose leaf the enrollment group trusts.
constexpr char kServerPkiSections[] = R"cnf([localhost]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[elsewhere]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:devid.example.com
[ca]
default_ca = past
[past]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
[any]
commonName = supplied
)cnf";

constexpr char kMakePki[] = R"sh(
set -e
root() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key \
    -subj /CN=$1 -days 3650 -out $1.pem -config ext.cnf -extensions root
}
request() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key \
    -subj /CN=$1 -out $1.csr -config ext.cnf
}
server() {
  request $1
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days 30 \
    -extfile ext.cnf -extensions $3 -out $1.pem
}
root Trusted-Root
root Other-Root
root Device-Root
server good Trusted-Root localhost
server wrong-name Trusted-Root elsewhere
server other-ca Other-Root localhost
# openssl x509 cannot backdate; openssl ca can.
request expired
touch index.txt
echo 01 > serial
openssl ca -batch -notext -config ext.cnf -cert Trusted-Root.pem -keyfile Trusted-Root.key \
  -in expired.csr -out expired.pem -extfile ext.cnf -extensions localhost \
  -startdate 20200101000000Z -enddate 20200201000000Z
cp good.pem served.pem
cp good.key served.key
)sh";

class ServerAuthenticationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::filesystem::temp_directory_path() /
           ("devid-one-way-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(pki_);
    std::string output;
    ASSERT_EQ(
        RunShell("cd " + pki_.string() + " && (" +
                     WriteVendorPkiConfig("ext.cnf", kServerPkiSections) + kMakePki + ") 2>&1",
                 &output),
        0)
        << output;
    ServerProcessOptions options;
    options.config_toml = "[tls]\ncertificate_file = \"" + File("served.pem") +
                          "\"\nkey_file = \"" + File("served.key") + "\"\ntrust_bundle_file = \"" +
                          File("Trusted-Root.pem") + "\"\n";
    auto server = ServerProcess::Start(options);
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
    ASSERT_NO_FATAL_FAILURE(MakeDevice());
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(pki_, ec);
  }

  std::string File(const std::string& name) const { return (pki_ / name).string(); }
  std::string KeyUri() const {
    return "file:" + File("device.key") + "?passphrase-env=DEVID_DEVICE_PASSPHRASE";
  }

  // MakeDevice makes the device's key with the SDK, has Device-Root certify it as
  // one-way-device, and enrolls Device-Root as the group's signing certificate.
  void MakeDevice() {
    CommandResult created = Devid({"device", "key", "create", "--key", KeyUri()}, env_);
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
    CommandResult csr = Devid({"device", "csr", "--key", KeyUri(), "--registration-id",
                               "one-way-device", "--out", File("device.csr")},
                              env_);
    ASSERT_EQ(csr.exit_code, 0) << Describe(csr);
    std::string output;
    ASSERT_EQ(RunShell("cd " + pki_.string() +
                           " && openssl x509 -req -in device.csr -CA Device-Root.pem -CAkey "
                           "Device-Root.key -CAcreateserial -days 30 -extfile ext.cnf -extensions "
                           "device -out device.pem 2>&1",
                       &output),
              0)
        << output;
    auto root = ReadFile(File("Device-Root.pem"));
    ASSERT_TRUE(root);
    DpsClient client(*server_);
    ASSERT_TRUE(client.connected());
    nlohmann::json group = {
        {"enrollmentGroupId", "one-way-devices"},
        {"attestation",
         {{"type", "x509"},
          {"x509", {{"signingCertificates", {{"primary", {{"certificate", *root}}}}}}}}}};
    auto put = client.Service("PUT", "/enrollmentGroups/one-way-devices", group);
    ASSERT_TRUE(put) << put.error().message();
    ASSERT_EQ(put->status, 200) << put->body;
  }

  // Serve restarts the server with the certificate and key called name.
  void Serve(const std::string& name) {
    std::filesystem::copy_file(File(name + ".pem"), File("served.pem"),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(File(name + ".key"), File("served.key"),
                               std::filesystem::copy_options::overwrite_existing);
    auto restarted = server_->Restart();
    ASSERT_TRUE(restarted) << restarted.error().message();
  }

  // Register runs the device against the server, trusting only Trusted-Root.
  CommandResult Register() {
    return RegisterX509(*server_, File("device.pem"), KeyUri(), {}, env_, File("Trusted-Root.pem"));
  }

  // ExpectNothingRegistered serves the good certificate again and checks that the server holds
  // no registration for the device.
  void ExpectNothingRegistered() {
    ASSERT_NO_FATAL_FAILURE(Serve("good"));
    EXPECT_FALSE(Registered(*server_, "one-way-device"));
  }

  std::filesystem::path pki_;
  std::vector<std::string> env_ = {"DEVID_DEVICE_PASSPHRASE=one-way passphrase"};
  std::optional<ServerProcess> server_;
};

TEST_F(ServerAuthenticationTest, Registers_WhenServerCertificateVerifies) {
  CommandResult r = Register();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(Registered(*server_, "one-way-device"));
}

TEST_F(ServerAuthenticationTest, Refuses_ServerCertificateFromAnotherCa) {
  ASSERT_NO_FATAL_FAILURE(Serve("other-ca"));
  CommandResult r = Register();
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("server certificate rejected"));
  EXPECT_THAT(r.err, HasSubstr("the server's certificate is not signed by your trust bundle"));
  ExpectNothingRegistered();
}

TEST_F(ServerAuthenticationTest, Refuses_ServerCertificateForAnotherName) {
  ASSERT_NO_FATAL_FAILURE(Serve("wrong-name"));
  CommandResult r = Register();
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("hostname mismatch"));
  EXPECT_THAT(r.err, HasSubstr("the server's certificate is not made out to localhost"));
  ExpectNothingRegistered();
}

TEST_F(ServerAuthenticationTest, Refuses_ExpiredServerCertificate) {
  ASSERT_NO_FATAL_FAILURE(Serve("expired"));
  CommandResult r = Register();
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("certificate has expired"));
  EXPECT_THAT(r.err, HasSubstr("the server's certificate has expired"));
  ExpectNothingRegistered();
}

}  // namespace
}  // namespace devid::testing
