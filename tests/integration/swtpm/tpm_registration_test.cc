// The DPS TPM flow (protocol notes §4.2) with a real TPM: swtpm in socket mode, driven by
// tpm2-tools the way a device's TPM stack drives it, against the real `devid serve`. The blob the
// server builds in software must pass the TPM's own TPM2_ActivateCredential, TPM2_Import and
// TPM2_Load, and the HMAC computed inside the TPM must sign the device's SAS token.
//
// Needs swtpm, swtpm-tools and tpm2-tools (scripts/install-deps.sh); a missing tool fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "registration_fixture.h"
#include "tpm/testing/software_tpm.h"

namespace devid::testing {
namespace {

using ::testing::HasSubstr;

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

  sdk::HttpResponse challenge = Register(reg_id, "", Body(reg_id, ek, srk));
  ASSERT_EQ(challenge.status, 401) << challenge.body;
  json answer = json::parse(challenge.body);
  EXPECT_EQ(answer["keyName"], "registration");
  auto blob = ossl::Base64Decode(answer["authenticationKey"].get<std::string>());
  ASSERT_TRUE(blob);
  ASSERT_TRUE(tpm->ActivateBlob(std::string(blob->begin(), blob->end()))) << tpm->err();

  std::string token = TpmToken(*tpm, reg_id);
  sdk::HttpResponse registered = Register(reg_id, token, Body(reg_id, ek, srk));
  ASSERT_EQ(registered.status, 202) << registered.body;
  std::string operation = json::parse(registered.body)["operationId"];

  sdk::HttpResponse done = Device(
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
  sdk::HttpResponse replay = Register(reg_id, token, Body(reg_id, ek, srk));
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
  sdk::HttpResponse challenge = Register(reg_id, "", Body(reg_id, ek, other_srk));
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
  sdk::HttpResponse own = Register(s_id, "", Body(s_id, s_ek, s_srk));
  auto own_blob = ossl::Base64Decode(json::parse(own.body)["authenticationKey"].get<std::string>());
  ASSERT_TRUE(signer->ActivateBlob(std::string(own_blob->begin(), own_blob->end())))
      << signer->err();
  sdk::HttpResponse refused = Register(reg_id, TpmToken(*signer, reg_id), Body(reg_id, ek, other_srk));
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
