// The device side of the DPS TPM flow (protocol notes §4) on a real TPM: devid's tpm2-tss ESAPI
// code (keys/tpm2) and `devid device register --tpm` against swtpm in socket mode and the real
// `devid serve`. Cross-checks: a blob made by devid's server code (tpm/) activates and imports
// in the TPM and the TPM's HMAC equals a software HMAC under the same key; a credential made by
// `tpm2_makecredential --tcti none` activates through devid's ActivateCredential.
//
// Needs swtpm and tpm2-tools (scripts/install-deps.sh); a missing tool fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "attestation/tpm/ek_certificate.h"
#include "base/hex.h"
#include "base/random.h"
#include "keys/tpm2/tpm2_device.h"
#include "ossl/mac.h"
#include "server_process.h"
#include "swtpm.h"
#include "tpm/credential.h"
#include "tpm/marshal.h"
#include "tpm/public_area.h"
#include "tpm/quote.h"

namespace devid::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class TpmDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) / ("devid-tpm-device-" + random_.Hex(6));
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    tpms_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // NewTpm starts a fresh swtpm and returns its TCTI ("" after a test failure); with ek_ca_dir,
  // one manufactured by that local CA (EK certificate in NV).
  std::string NewTpm(const std::string& name, const std::filesystem::path& ek_ca_dir = {}) {
    auto tpm = Swtpm::Start(root_ / name, ek_ca_dir);
    if (!tpm) return "";
    tpms_.push_back(std::move(tpm));
    return tpms_.back()->Tcti();
  }

  // OpenDevice opens the TPM and makes its EK and SRK, as a device does on first start.
  std::unique_ptr<keys::Tpm2Device> OpenDevice(const std::string& tcti, tpm::RsaPublic* ek,
                                               tpm::RsaPublic* srk) {
    auto device = keys::Tpm2Device::Open(tcti);
    EXPECT_TRUE(device) << device.error().message();
    if (!device) return nullptr;
    auto ek_bytes = (*device)->EndorsementKey();
    auto srk_bytes = (*device)->StorageRootKey();
    EXPECT_TRUE(ek_bytes && srk_bytes);
    if (!ek_bytes || !srk_bytes) return nullptr;
    auto ek_public = tpm::ParseRsaPublic(*ek_bytes);
    auto srk_public = tpm::ParseRsaPublic(*srk_bytes);
    EXPECT_TRUE(ek_public && srk_public);
    if (!ek_public || !srk_public) return nullptr;
    if (ek) *ek = *ek_public;
    if (srk) *srk = *srk_public;
    return std::move(*device);
  }

  CommandResult Devid(std::vector<std::string> args) {
    args.insert(args.begin(), DEVID_BINARY);
    return RunCommand(args);
  }

  SecureRandom random_;
  std::filesystem::path root_;
  std::vector<std::unique_ptr<Swtpm>> tpms_;
};

TEST_F(TpmDeviceTest, CreatesAzureEkAndSrkOnceAndReadsThemBack) {
  std::string tcti = NewTpm("tpm");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek, srk;
  ASSERT_NE(OpenDevice(tcti, &ek, &srk), nullptr);
  // The Azure templates (protocol notes §4.1): 316- and 284-byte TPM2B_PUBLICs, the EK with
  // the TCG policy.
  EXPECT_EQ(ek.Tpm2b().size(), 316u);
  EXPECT_EQ(srk.Tpm2b().size(), 284u);
  EXPECT_EQ(HexEncode(ek.auth_policy),
            "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa");
  EXPECT_EQ(ek.attributes & (tpm::kRestricted | tpm::kDecrypt | tpm::kAdminWithPolicy),
            tpm::kRestricted | tpm::kDecrypt | tpm::kAdminWithPolicy);
  // A second open finds the persisted keys instead of making new ones.
  tpm::RsaPublic ek_again, srk_again;
  ASSERT_NE(OpenDevice(tcti, &ek_again, &srk_again), nullptr);
  EXPECT_EQ(ek_again.tpmt, ek.tpmt);
  EXPECT_EQ(srk_again.tpmt, srk.tpmt);
  // tpm2_createek derives the same EK from the endorsement seed: the template is the TCG one.
  Swtpm& swtpm = *tpms_.back();
  swtpm.Tool("createek",
             {"-c", swtpm.File("ek.ctx"), "-G", "rsa", "-u", swtpm.File("tools-ek.pub")});
  ASSERT_TRUE(swtpm.ok()) << swtpm.err();
  swtpm.FlushTransients();
  tpm::Bytes ek_bytes = ek.Tpm2b();
  EXPECT_EQ(ReadFile(swtpm.File("tools-ek.pub")), std::string(ek_bytes.begin(), ek_bytes.end()));
}

TEST_F(TpmDeviceTest, ImportsBlobBuiltByServerCode_HmacInTpmEqualsSoftwareHmac) {
  std::string tcti = NewTpm("tpm");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek, srk;
  auto device = OpenDevice(tcti, &ek, &srk);
  ASSERT_NE(device, nullptr);

  std::vector<uint8_t> key = random_.Bytes(32);
  auto blob = tpm::BuildActivationBlob(ek, srk, key, random_);
  ASSERT_TRUE(blob) << blob.error().message();
  auto imported = device->ImportActivationBlob(*blob);
  ASSERT_TRUE(imported) << imported.error().message();
  std::string message = "0ne00000001%2Fregistrations%2Fdevice\n1795707710";
  auto mac = device->HmacSha256(message);
  ASSERT_TRUE(mac) << mac.error().message();
  EXPECT_EQ(*mac, ossl::HmacSha256(key, message));

  // A second blob replaces the persisted key.
  std::vector<uint8_t> next_key = random_.Bytes(32);
  auto next_blob = tpm::BuildActivationBlob(ek, srk, next_key, random_, "uri");
  ASSERT_TRUE(next_blob);
  ASSERT_TRUE(device->ImportActivationBlob(*next_blob));
  EXPECT_EQ(*device->HmacSha256(message), ossl::HmacSha256(next_key, message));
}

TEST_F(TpmDeviceTest, Rejects_BlobMadeForAnotherTpm_KeepsTheOldKey) {
  std::string tcti = NewTpm("device");
  std::string other_tcti = NewTpm("other");
  ASSERT_FALSE(tcti.empty() || other_tcti.empty());
  tpm::RsaPublic ek, srk, other_ek, other_srk;
  auto device = OpenDevice(tcti, &ek, &srk);
  auto other = OpenDevice(other_tcti, &other_ek, &other_srk);
  ASSERT_TRUE(device && other);
  std::vector<uint8_t> key = random_.Bytes(32);
  ASSERT_TRUE(device->ImportActivationBlob(*tpm::BuildActivationBlob(ek, srk, key, random_)));

  // Made for the other TPM's EK: this TPM's EK cannot recover the seed.
  auto foreign = tpm::BuildActivationBlob(other_ek, other_srk, random_.Bytes(32), random_);
  ASSERT_TRUE(foreign);
  auto refused = device->ImportActivationBlob(*foreign);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_THAT(refused.error().message(), HasSubstr("activating the credential"));
  // This EK but another SRK: the credential is bound to Name(other SRK), so activation fails.
  auto wrong_srk = tpm::BuildActivationBlob(ek, other_srk, random_.Bytes(32), random_);
  ASSERT_TRUE(wrong_srk);
  refused = device->ImportActivationBlob(*wrong_srk);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnauthenticated);
  // The persisted key is unchanged.
  EXPECT_EQ(*device->HmacSha256("still mine"), ossl::HmacSha256(key, "still mine"));
}

TEST_F(TpmDeviceTest, Rejects_MalformedBlob_AndHmacWithoutKeyOrOverlongMessage) {
  std::string tcti = NewTpm("tpm");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek, srk;
  auto device = OpenDevice(tcti, &ek, &srk);
  ASSERT_NE(device, nullptr);

  auto no_key = device->HmacSha256("x");
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(no_key.error().message(), HasSubstr("0x81000100"));

  auto blob = *tpm::BuildActivationBlob(ek, srk, random_.Bytes(32), random_);
  blob.resize(400);  // cut inside the TPM2B_PRIVATE
  auto truncated = device->ImportActivationBlob(blob);
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(truncated.error().message(), HasSubstr("malformed"));
  EXPECT_EQ(device->HmacSha256("x").error().code(), ErrorCode::kNotFound);

  std::vector<uint8_t> key = random_.Bytes(32);
  ASSERT_TRUE(device->ImportActivationBlob(*tpm::BuildActivationBlob(ek, srk, key, random_)));
  auto overlong = device->HmacSha256(std::string(1025, 'a'));
  ASSERT_FALSE(overlong);
  EXPECT_EQ(overlong.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TpmDeviceTest, ActivatesCredentialMadeByTpm2Makecredential) {
  std::string tool = Which("tpm2_makecredential");
  ASSERT_FALSE(tool.empty()) << "tpm2-tools is not installed (scripts/install-deps.sh)";
  std::string tcti = NewTpm("tpm");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek, srk;
  auto device = OpenDevice(tcti, &ek, &srk);
  ASSERT_NE(device, nullptr);
  tpm::Bytes ek_bytes = ek.Tpm2b();
  WriteFile(root_ / "ek.pub", std::string(ek_bytes.begin(), ek_bytes.end()));
  std::vector<uint8_t> secret = random_.Bytes(16);
  WriteFile(root_ / "secret.bin", std::string(secret.begin(), secret.end()));

  CommandResult r = RunCommand({tool, "--tcti", "none", "-u", (root_ / "ek.pub").string(), "-s",
                                (root_ / "secret.bin").string(), "-n", HexEncode(*srk.Name()), "-o",
                                (root_ / "cred.out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
  // TPM2B_ENCRYPTED_SECRET.
  std::string out = ReadFile(root_ / "cred.out");
  tpm::Reader reader(std::span(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  ASSERT_EQ(*reader.U32("magic"), 0xBADCC0DEu);
  ASSERT_EQ(*reader.U32("version"), 1u);
  auto id_object = reader.B2("TPM2B_ID_OBJECT");
  auto encrypted_secret = reader.B2("TPM2B_ENCRYPTED_SECRET");
  ASSERT_TRUE(id_object && encrypted_secret);

  auto recovered = device->ActivateCredential(keys::kTpm2SrkHandle, tpm::B2(*id_object),
                                              tpm::B2(*encrypted_secret));
  ASSERT_TRUE(recovered) << recovered.error().message();
  EXPECT_EQ(*recovered, secret);
  // Named for another object (the EK instead of the SRK), the TPM refuses.
  auto wrong_object = device->ActivateCredential(keys::kTpm2EkHandle, tpm::B2(*id_object),
                                                 tpm::B2(*encrypted_secret));
  ASSERT_FALSE(wrong_object);
  EXPECT_EQ(wrong_object.error().code(), ErrorCode::kUnauthenticated);
}

// The EK certificate a manufacturer wrote to NV (swtpm's local CA here) comes back as the same
// DER bytes tpm2_nvread reads, and validates for this TPM's EK; a TPM without one has none.
TEST_F(TpmDeviceTest, ReadsEkCertificateFromNv_NoneWhenNotManufactured) {
  std::string tcti = NewTpm("manufactured", root_ / "manufacturer");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek;
  auto device = OpenDevice(tcti, &ek, nullptr);
  ASSERT_NE(device, nullptr);
  auto certificate = device->ReadEndorsementKeyCertificate();
  ASSERT_TRUE(certificate) << certificate.error().message();
  ASSERT_FALSE(certificate->empty());
  device.reset();  // swtpm serves one connection at a time
  EXPECT_EQ(std::string(certificate->begin(), certificate->end()),
            tpms_.back()->ReadEkCertificate());
  auto roots = attestation::LoadEkManufacturerRoots(ManufacturerRootsPem(root_ / "manufacturer"));
  ASSERT_TRUE(roots) << roots.error().message();
  auto verified = attestation::VerifyEkCertificate(*certificate, ek, *roots,
                                                   std::chrono::system_clock::now());
  EXPECT_TRUE(verified) << verified.error().message();

  std::string bare_tcti = NewTpm("bare");
  ASSERT_FALSE(bare_tcti.empty());
  auto bare = OpenDevice(bare_tcti, nullptr, nullptr);
  ASSERT_NE(bare, nullptr);
  auto none = bare->ReadEndorsementKeyCertificate();
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());
}

// Measured boot's device half: an AK in the same TPM as the EK (proved by activating a
// credential made by devid's server code for the AK's name) quotes PCRs over a nonce.
TEST_F(TpmDeviceTest, QuotesPcrsWithAttestationKeyBoundToEk) {
  std::string tcti = NewTpm("tpm");
  ASSERT_FALSE(tcti.empty());
  tpm::RsaPublic ek;
  auto device = OpenDevice(tcti, &ek, nullptr);
  ASSERT_NE(device, nullptr);
  auto ak_bytes = device->CreateAttestationKey();
  ASSERT_TRUE(ak_bytes) << ak_bytes.error().message();
  auto ak = tpm::ParseRsaPublic(*ak_bytes);
  ASSERT_TRUE(ak) << ak.error().message();
  EXPECT_EQ(ak->attributes & (tpm::kRestricted | tpm::kSign), tpm::kRestricted | tpm::kSign);
  EXPECT_EQ(*device->CreateAttestationKey(), *ak_bytes);  // persisted, not made again

  std::vector<uint8_t> challenge = random_.Bytes(32);
  auto credential = tpm::MakeCredential(ek, *ak->Name(), challenge, random_);
  ASSERT_TRUE(credential);
  auto answer =
      device->ActivateCredential(keys::kTpm2AttestationKeyHandle,
                                 tpm::B2(credential->credential_blob), tpm::B2(credential->secret));
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(*answer, challenge);

  std::vector<uint8_t> nonce = random_.Bytes(20);
  std::vector<uint32_t> pcrs = {0, 1, 7};
  auto quote = device->Quote(pcrs, nonce);
  ASSERT_TRUE(quote) << quote.error().message();
  // devid's verifier side (tpm/quote.h) accepts it: signed by the AK, over the nonce, with the
  // digest of the PCR values the TPM reports.
  auto attest = tpm::ParseQuote(quote->attest);
  ASSERT_TRUE(attest) << attest.error().message();
  EXPECT_EQ(attest->extra_data, nonce);
  ASSERT_EQ(attest->pcr_select.size(), 1u);
  EXPECT_EQ(attest->pcr_select[0].hash, tpm::Alg::kSha256);
  EXPECT_EQ(attest->pcr_select[0].pcrs, pcrs);
  auto signature = tpm::ParseSignature(quote->signature);
  ASSERT_TRUE(signature) << signature.error().message();
  auto verified = tpm::VerifyQuoteSignature(*ak, quote->attest, *signature);
  EXPECT_TRUE(verified) << verified.error().message();
  auto values = device->ReadPcrs(pcrs);
  ASSERT_TRUE(values) << values.error().message();
  ASSERT_EQ(values->size(), 3u);
  std::vector<tpm::Bytes> pcr_values(values->begin(), values->end());
  EXPECT_EQ(*tpm::PcrCompositeDigest(tpm::Alg::kSha256, pcr_values), attest->pcr_digest);
  // A signature over other bytes does not verify.
  std::vector<uint8_t> altered = quote->attest;
  altered.back() ^= 1;
  EXPECT_FALSE(tpm::VerifyQuoteSignature(*ak, altered, *signature));
  auto bad_pcr = device->Quote(std::vector<uint32_t>{24}, nonce);
  ASSERT_FALSE(bad_pcr);
  EXPECT_EQ(bad_pcr.error().code(), ErrorCode::kInvalidArgument);
}

// `devid device register --tpm` against the real server, with the enrollment made from the EK
// `devid device show --tpm` prints.
class DeviceRegisterTest : public TpmDeviceTest {
 protected:
  void SetUp() override {
    TpmDeviceTest::SetUp();
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server) << server.error().message();
    server_.emplace(std::move(*server));
  }

  // Show runs `devid device show --tpm` and returns its JSON, writing the EK to ek_out.
  json Show(const std::string& tcti, const std::filesystem::path& ek_out) {
    CommandResult r = Devid(
        {"device", "show", "--tpm", "--tcti", tcti, "--ek-out", ek_out.string(), "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  // ShowRegistration runs `devid registration show reg_id`: exit 0 when the service has a
  // registration record for it.
  CommandResult ShowRegistration(const std::string& reg_id) {
    return Devid(
        {"registration", "show", reg_id, "-o", "json", "--connection", server_->connection_file()});
  }

  std::optional<ServerProcess> server_;
};

TEST_F(DeviceRegisterTest, RegistersWithTpmAgainstServe) {
  std::string tcti = NewTpm("device");
  ASSERT_FALSE(tcti.empty());
  json shown = Show(tcti, root_ / "ek.pub");
  ASSERT_TRUE(shown.is_object());
  std::string reg_id = shown["registrationId"];
  CommandResult enrolled = Devid({"enrollment", "add", "--tpm-ek", (root_ / "ek.pub").string(),
                                  "--connection", server_->connection_file(), "-o", "json"});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
  EXPECT_EQ(json::parse(enrolled.out)["registrationId"], reg_id);

  CommandResult r = Devid(DeviceRegisterArgs(*server_, tcti));
  ASSERT_EQ(r.exit_code, 0) << Describe(r) << server_->log();
  json assignment = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(assignment.is_object()) << r.out;
  EXPECT_EQ(assignment["registrationId"], reg_id);
  EXPECT_EQ(assignment["deviceId"], reg_id);
  EXPECT_FALSE(assignment["assignedHub"].get<std::string>().empty());
  CommandResult stored = ShowRegistration(reg_id);
  EXPECT_EQ(stored.exit_code, 0) << Describe(stored);
  EXPECT_THAT(stored.out, HasSubstr("assigned"));

  // The key stays in the TPM: registering again runs a new challenge and succeeds.
  CommandResult again = Devid(DeviceRegisterArgs(*server_, tcti));
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
}

TEST_F(DeviceRegisterTest, Rejects_EkNotEnrolled_StoresNothing) {
  std::string tcti = NewTpm("device");
  ASSERT_FALSE(tcti.empty());
  json shown = Show(tcti, root_ / "ek.pub");
  std::string reg_id = shown.value("registrationId", "");
  CommandResult r = Devid(DeviceRegisterArgs(*server_, tcti));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("HTTP 401"));
  EXPECT_THAT(r.err, HasSubstr("no TPM enrollment for registration " + reg_id));
  CommandResult stored = ShowRegistration(reg_id);
  EXPECT_EQ(stored.exit_code, 1) << Describe(stored);
}

TEST_F(DeviceRegisterTest, Rejects_ServerOutsideTrustBundleOrWithAnotherName) {
  std::string tcti = NewTpm("device");
  ASSERT_FALSE(tcti.empty());
  std::string reg_id = Show(tcti, root_ / "ek.pub").value("registrationId", "");
  ASSERT_EQ(Devid({"enrollment", "add", "--tpm-ek", (root_ / "ek.pub").string(), "--connection",
                   server_->connection_file()})
                .exit_code,
            0);
  // Another CA, made here with openssl: the server's chain does not verify to it.
  CommandResult ca =
      RunCommand({Which("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", (root_ / "other.key").string(),
                  "-out", (root_ / "other.pem").string(), "-subj", "/CN=other CA", "-days", "1"});
  ASSERT_EQ(ca.exit_code, 0) << Describe(ca);
  CommandResult untrusted =
      Devid(DeviceRegisterArgs(*server_, tcti, (root_ / "other.pem").string()));
  EXPECT_EQ(untrusted.exit_code, 1) << Describe(untrusted);
  EXPECT_THAT(untrusted.err, HasSubstr("server certificate rejected"));

  std::vector<std::string> args = DeviceRegisterArgs(*server_, tcti);
  args.insert(args.end(), {"--server-name", "not-the-server.example"});
  CommandResult wrong_name = Devid(args);
  EXPECT_EQ(wrong_name.exit_code, 1) << Describe(wrong_name);
  EXPECT_THAT(wrong_name.err, HasSubstr("server certificate rejected: hostname mismatch"));
  EXPECT_EQ(ShowRegistration(reg_id).exit_code, 1);
}

}  // namespace
}  // namespace devid::testing
