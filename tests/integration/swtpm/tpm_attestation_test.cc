// devid's TPM attestation extensions with real TPMs (docs/device-provisioning.md): EK
// certificates issued by swtpm's own local CA standing in for a TPM manufacturer, measured boot
// with quotes and AK activations made by tpm2-tools on swtpm, and the challenge's refusals, each
// checked against the real `devid serve`, with the store left unchanged. Then the same extensions
// driven end to end by the device CLI, `devid device register --tpm`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/hex.h"
#include "ossl/mac.h"
#include "registration_fixture.h"

namespace devid::testing {
namespace {

using ::testing::HasSubstr;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// SwtpmAttestationTest runs the server with the local CA in root_/manufacturer as its TPM
// manufacturer roots. Its challenges live long enough for tpm2-tools on a busy machine.
class SwtpmAttestationTest : public SwtpmRegistrationTest {
 protected:
  // ChallengeTtlSeconds is the server's challenge lifetime.
  virtual int ChallengeTtlSeconds() const { return 300; }

  ServerProcessOptions ServerOptions() override {
    // Manufacturing a throwaway TPM creates the CA, so its roots exist before the server starts.
    Manufacture(root_ / "first-tpm-state", Manufacturer());
    WriteFile(root_ / "ek-roots.pem", ManufacturerRootsPem(Manufacturer()));
    ServerProcessOptions options;
    options.config_toml = "[device]\ntpm_ek_roots_file = \"" + (root_ / "ek-roots.pem").string() +
                          "\"\ntpm_challenge_ttl_seconds = " +
                          std::to_string(ChallengeTtlSeconds()) + "\n";
    return options;
  }

  std::filesystem::path Manufacturer() const { return root_ / "manufacturer"; }

  // EnrollWith enrolls ek under Azure's default ID with the devid extensions in tpm_extra.
  std::string EnrollWith(const std::string& ek, const json& tpm_extra) {
    std::string reg_id = tpm::RegistrationIdFromEk(AsBytes(ek));
    json tpm = {{"endorsementKey", ossl::Base64Encode(ek)}};
    tpm.update(tpm_extra);
    sdk::HttpResponse r = Service(
        "PUT", "/enrollments/" + reg_id,
        {{"registrationId", reg_id}, {"attestation", {{"type", "tpm"}, {"tpm", tpm}}}});
    EXPECT_EQ(r.status, 200) << r.body;
    return reg_id;
  }

  static std::string BodyWith(const std::string& reg_id, const std::string& ek,
                              const std::string& srk, const json& tpm_extra) {
    json body = json::parse(Body(reg_id, ek, srk));
    body["tpm"].update(tpm_extra);
    return body.dump();
  }

  // PcrPolicy is a policy over sha256 PCRs 0 and 7 that allows their current values on tpm.
  static json PcrPolicy(Swtpm& tpm) {
    ossl::Sha256Digest digest = ossl::Sha256(AsBytes(tpm.PcrValues("sha256:0,7")));
    return {{"pcrPolicy", {{"pcrs", {0, 7}}, {"digest", HexEncode(digest)}}}};
  }

  // Evidence is a device's measured-boot answer to challenge: the AK credential activated in tpm
  // and a quote with nonce_hex (the challenge's nonce unless given).
  json Evidence(Swtpm& tpm, const std::string& ak, const json& challenge,
                std::optional<std::string> nonce_hex = std::nullopt) {
    auto credential = ossl::Base64Decode(
        challenge["attestationChallenge"]["attestationKeyCredential"].get<std::string>());
    std::string secret;
    EXPECT_TRUE(tpm.ActivateAkCredential(std::string(credential->begin(), credential->end()),
                                         secret))
        << tpm.err();
    if (!nonce_hex) {
      auto nonce =
          ossl::Base64Decode(challenge["attestationChallenge"]["nonce"].get<std::string>());
      nonce_hex = HexEncode(*nonce);
    }
    std::string attest, signature;
    tpm.Quote("sha256:0,7", *nonce_hex, attest, signature);
    return {{"attestationKey", ossl::Base64Encode(ak)},
            {"attestationKeyCredential", ossl::Base64Encode(secret)},
            {"quote", ossl::Base64Encode(attest)},
            {"quoteSignature", ossl::Base64Encode(signature)}};
  }

  // ChallengeWithAk runs step 1 with the AK named and returns the 401 answer.
  json ChallengeWithAk(const std::string& reg_id, const std::string& ek, const std::string& srk,
                       const std::string& ak) {
    sdk::HttpResponse r =
        Register(reg_id, "", BodyWith(reg_id, ek, srk, {{"attestationKey", ossl::Base64Encode(ak)}}));
    EXPECT_EQ(r.status, 401) << r.body;
    json answer = json::parse(r.body);
    EXPECT_TRUE(answer["attestationChallenge"]["nonce"].is_string()) << r.body;
    return answer;
  }

  // Activate activates the answer's blob in tpm, as in the Azure flow.
  void Activate(Swtpm& tpm, const json& answer) {
    auto blob = ossl::Base64Decode(answer["authenticationKey"].get<std::string>());
    ASSERT_TRUE(blob);
    ASSERT_TRUE(tpm.ActivateBlob(std::string(blob->begin(), blob->end()))) << tpm.err();
  }

  void ExpectRefused(const sdk::HttpResponse& r, int status, const std::string& message,
                     const std::string& reg_id) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_THAT(r.body, HasSubstr(message));
    ExpectNotRegistered(reg_id);
  }
};

// EK certificates.

TEST_F(SwtpmAttestationTest, Registers_WithEkCertificateFromTheManufacturersNv) {
  Swtpm* tpm = NewTpm("device", Manufacturer());
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = EnrollWith(ek, {{"requireEndorsementKeyCertificate", true}});
  std::string cert = ossl::Base64Encode(tpm->ReadEkCertificate());

  sdk::HttpResponse missing = Register(reg_id, "", Body(reg_id, ek, srk));
  ExpectRefused(missing, 401, "an EK certificate is required", reg_id);

  json with_cert = {{"endorsementKeyCertificate", cert}};
  sdk::HttpResponse challenge = Register(reg_id, "", BodyWith(reg_id, ek, srk, with_cert));
  ASSERT_EQ(challenge.status, 401) << challenge.body;
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, json::parse(challenge.body)));
  sdk::HttpResponse registered =
      Register(reg_id, TpmToken(*tpm, reg_id), BodyWith(reg_id, ek, srk, with_cert));
  EXPECT_EQ(registered.status, 202) << registered.body;
}

TEST_F(SwtpmAttestationTest, Rejects_EkCertificateFromAnUntrustedRoot) {
  // Another "manufacturer": a local CA the server does not trust.
  Swtpm* tpm = NewTpm("grey-market", root_ / "other-manufacturer");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = EnrollWith(ek, {{"requireEndorsementKeyCertificate", true}});
  json with_cert = {{"endorsementKeyCertificate", ossl::Base64Encode(tpm->ReadEkCertificate())}};
  sdk::HttpResponse r = Register(reg_id, "", BodyWith(reg_id, ek, srk, with_cert));
  ExpectRefused(r, 401, "does not validate to a TPM manufacturer root", reg_id);
}

TEST_F(SwtpmAttestationTest, Rejects_EkCertificateForAnotherKey) {
  Swtpm* device = NewTpm("device", Manufacturer());
  Swtpm* other = NewTpm("other", Manufacturer());
  ASSERT_TRUE(device && other);
  std::string ek, srk, other_ek, other_srk;
  ASSERT_NO_FATAL_FAILURE(device->ProvisionAzureKeys(ek, srk));
  ASSERT_NO_FATAL_FAILURE(other->ProvisionAzureKeys(other_ek, other_srk));
  std::string reg_id = EnrollWith(ek, {{"requireEndorsementKeyCertificate", true}});
  // A genuine certificate, from the trusted manufacturer, of another TPM's EK.
  json with_cert = {{"endorsementKeyCertificate",
                     ossl::Base64Encode(other->ReadEkCertificate())}};
  sdk::HttpResponse r = Register(reg_id, "", BodyWith(reg_id, ek, srk, with_cert));
  ExpectRefused(r, 401, "for another key than the endorsement key", reg_id);
}

// Measured boot.

TEST_F(SwtpmAttestationTest, Registers_WithQuoteByAkActivatedInTheSameTpm) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = EnrollWith(ek, PcrPolicy(*tpm));
  std::string ak = tpm->CreateAk();

  // Without the AK the challenge cannot carry a quote challenge: refused, nothing stored.
  sdk::HttpResponse no_ak = Register(reg_id, "", Body(reg_id, ek, srk));
  ExpectRefused(no_ak, 400, "tpm.attestationKey is required", reg_id);

  json challenge = ChallengeWithAk(reg_id, ek, srk, ak);
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, challenge));
  json evidence = Evidence(*tpm, ak, challenge);
  sdk::HttpResponse registered =
      Register(reg_id, TpmToken(*tpm, reg_id), BodyWith(reg_id, ek, srk, evidence));
  EXPECT_EQ(registered.status, 202) << registered.body;
}

TEST_F(SwtpmAttestationTest, Rejects_PcrDigestMismatchAfterPcrExtend) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = EnrollWith(ek, PcrPolicy(*tpm));
  std::string ak = tpm->CreateAk();
  tpm->PcrExtend(7);  // another boot component measured
  json challenge = ChallengeWithAk(reg_id, ek, srk, ak);
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, challenge));
  sdk::HttpResponse r = Register(reg_id, TpmToken(*tpm, reg_id),
                             BodyWith(reg_id, ek, srk, Evidence(*tpm, ak, challenge)));
  ExpectRefused(r, 401, "measured boot: PCR digest mismatch", reg_id);
}

TEST_F(SwtpmAttestationTest, Rejects_QuoteWithoutNonceOrWithAStaleOne) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = EnrollWith(ek, PcrPolicy(*tpm));
  std::string ak = tpm->CreateAk();

  json stale = ChallengeWithAk(reg_id, ek, srk, ak);
  std::string stale_nonce =
      HexEncode(*ossl::Base64Decode(stale["attestationChallenge"]["nonce"].get<std::string>()));
  json challenge = ChallengeWithAk(reg_id, ek, srk, ak);
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, challenge));
  sdk::HttpResponse old = Register(reg_id, TpmToken(*tpm, reg_id),
                               BodyWith(reg_id, ek, srk, Evidence(*tpm, ak, challenge, stale_nonce)));
  ExpectRefused(old, 401, "stale or replayed", reg_id);
  sdk::HttpResponse none = Register(reg_id, TpmToken(*tpm, reg_id),
                                BodyWith(reg_id, ek, srk, Evidence(*tpm, ak, challenge, "")));
  ExpectRefused(none, 401, "the quote carries no nonce", reg_id);
}

TEST_F(SwtpmAttestationTest, Rejects_AkFromAnotherTpm) {
  Swtpm* device = NewTpm("device");
  Swtpm* other = NewTpm("other");
  ASSERT_TRUE(device && other);
  std::string ek, srk, other_ek, other_srk;
  ASSERT_NO_FATAL_FAILURE(device->ProvisionAzureKeys(ek, srk));
  ASSERT_NO_FATAL_FAILURE(other->ProvisionAzureKeys(other_ek, other_srk));
  std::string reg_id = EnrollWith(ek, PcrPolicy(*device));
  // The AK lives in the other TPM (whose PCRs hold the same values: both booted nothing).
  std::string foreign_ak = other->CreateAk();
  json challenge = ChallengeWithAk(reg_id, ek, srk, foreign_ak);
  ASSERT_NO_FATAL_FAILURE(Activate(*device, challenge));
  // Neither TPM can activate the AK credential: the device has no such AK, the other TPM not
  // the EK it is wrapped to. The other TPM quotes; the credential sent is not the wrapped one.
  auto credential = ossl::Base64Decode(
      challenge["attestationChallenge"]["attestationKeyCredential"].get<std::string>());
  std::string secret;
  EXPECT_FALSE(other->ActivateAkCredential(std::string(credential->begin(), credential->end()),
                                           secret));
  std::string attest, signature;
  auto nonce = ossl::Base64Decode(challenge["attestationChallenge"]["nonce"].get<std::string>());
  other->Quote("sha256:0,7", HexEncode(*nonce), attest, signature);
  json evidence = {{"attestationKey", ossl::Base64Encode(foreign_ak)},
                   {"attestationKeyCredential", ossl::Base64Encode(std::string(32, 'x'))},
                   {"quote", ossl::Base64Encode(attest)},
                   {"quoteSignature", ossl::Base64Encode(signature)}};
  sdk::HttpResponse r =
      Register(reg_id, TpmToken(*device, reg_id), BodyWith(reg_id, ek, srk, evidence));
  ExpectRefused(r, 401, "the attestation key is not bound to the endorsement key", reg_id);
}

// The challenge's remaining refusals.

TEST_F(SwtpmAttestationTest, Rejects_EkNotEnrolled) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = tpm::RegistrationIdFromEk(AsBytes(ek));
  sdk::HttpResponse r = Register(reg_id, "", Body(reg_id, ek, srk));
  ExpectRefused(r, 401, "no TPM enrollment for registration " + reg_id, reg_id);
}

// SwtpmChallengeExpiryTest runs the server with a 2-second challenge lifetime, to outwait it.
class SwtpmChallengeExpiryTest : public SwtpmAttestationTest {
 protected:
  static constexpr int kChallengeTtlSeconds = 2;
  int ChallengeTtlSeconds() const override { return kChallengeTtlSeconds; }
};

TEST_F(SwtpmChallengeExpiryTest, Rejects_ExpiredChallenge) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = Enroll(ek);
  sdk::HttpResponse challenge = Register(reg_id, "", Body(reg_id, ek, srk));
  ASSERT_EQ(challenge.status, 401) << challenge.body;
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, json::parse(challenge.body)));
  std::string token = TpmToken(*tpm, reg_id);
  // The real server has no injectable clock: outwait its configured challenge lifetime.
  std::this_thread::sleep_for(std::chrono::seconds(kChallengeTtlSeconds) +
                              std::chrono::milliseconds(200));
  sdk::HttpResponse r = Register(reg_id, token, Body(reg_id, ek, srk));
  ExpectRefused(r, 401, "no pending TPM challenge", reg_id);
}

TEST_F(SwtpmAttestationTest, Rejects_SasSignedWithAnotherKeyAndReplayAfterSuccess) {
  Swtpm* tpm = NewTpm("device");
  ASSERT_NE(tpm, nullptr);
  std::string ek, srk;
  ASSERT_NO_FATAL_FAILURE(tpm->ProvisionAzureKeys(ek, srk));
  std::string reg_id = Enroll(ek);
  sdk::HttpResponse first = Register(reg_id, "", Body(reg_id, ek, srk));
  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, json::parse(first.body)));
  std::string old_key_token = TpmToken(*tpm, reg_id);
  // A new challenge replaces the first: a token signed with the first key is a wrong key now.
  sdk::HttpResponse second = Register(reg_id, "", Body(reg_id, ek, srk));
  ASSERT_EQ(second.status, 401);
  sdk::HttpResponse wrong = Register(reg_id, old_key_token, Body(reg_id, ek, srk));
  ExpectRefused(wrong, 401, "does not verify with the TPM challenge key", reg_id);

  ASSERT_NO_FATAL_FAILURE(Activate(*tpm, json::parse(second.body)));
  std::string token = TpmToken(*tpm, reg_id);
  ASSERT_EQ(Register(reg_id, token, Body(reg_id, ek, srk)).status, 202);
  sdk::HttpResponse replay = Register(reg_id, token, Body(reg_id, ek, srk));
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_THAT(replay.body, HasSubstr("no pending TPM challenge"));
}

// The device CLI: `devid device register --tpm` reads the EK certificate from the TPM's NV and,
// with --quote-pcrs, answers the measured-boot challenge with devid's own TPM code.
class DeviceCliAttestationTest : public SwtpmAttestationTest {
 protected:
  // ShowEk returns the EK's TPM2B_PUBLIC as `devid device show --tpm` writes it.
  std::string ShowEk(Swtpm& tpm) {
    CommandResult r = RunCommand({DEVID_BINARY, "device", "show", "--tpm", "--tcti", tpm.Tcti(),
                                  "--ek-out", tpm.File("cli-ek.pub").string()});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return ReadFile(tpm.File("cli-ek.pub"));
  }

  // RegisterByCli runs `devid device register --tpm` on tpm against this server, plus extra.
  CommandResult RegisterByCli(Swtpm& tpm, const std::vector<std::string>& extra) {
    std::vector<std::string> args = DeviceRegisterArgs(*server_, tpm.Tcti());
    args.insert(args.begin(), DEVID_BINARY);
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCommand(args);
  }

  // EnrollStrict enrolls tpm's EK requiring its EK certificate and the current PCRs 0 and 7.
  std::string EnrollStrict(Swtpm& tpm) {
    json extensions = PcrPolicy(tpm);
    extensions["requireEndorsementKeyCertificate"] = true;
    return EnrollWith(ShowEk(tpm), extensions);
  }

  void ExpectCliRefused(const CommandResult& r, const std::string& message,
                        const std::string& reg_id) {
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(message));
    ExpectNotRegistered(reg_id);
  }
};

TEST_F(DeviceCliAttestationTest, Registers_WithEkCertificateAndQuote) {
  Swtpm* tpm = NewTpm("device", Manufacturer());
  ASSERT_NE(tpm, nullptr);
  std::string reg_id = EnrollStrict(*tpm);
  CommandResult r = RegisterByCli(*tpm, {"--quote-pcrs", "0,7"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r) << server_->log();
  json assignment = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_EQ(assignment.value("registrationId", ""), reg_id) << r.out;
  sdk::HttpResponse stored = Service("GET", "/registrations/" + reg_id, nullptr);
  EXPECT_EQ(stored.status, 200) << stored.body;
  // The AK persists: registering again reuses it for a new challenge.
  CommandResult again = RegisterByCli(*tpm, {"--quote-pcrs", "0,7"});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
}

TEST_F(DeviceCliAttestationTest, Rejects_QuoteAfterPcrExtend) {
  Swtpm* tpm = NewTpm("device", Manufacturer());
  ASSERT_NE(tpm, nullptr);
  std::string reg_id = EnrollStrict(*tpm);
  tpm->PcrExtend(7);  // another boot component measured
  CommandResult r = RegisterByCli(*tpm, {"--quote-pcrs", "0,7"});
  ExpectCliRefused(r, "measured boot: PCR digest mismatch", reg_id);
}

TEST_F(DeviceCliAttestationTest, Rejects_WithoutQuotePcrsOrWithOtherPcrs) {
  Swtpm* tpm = NewTpm("device", Manufacturer());
  ASSERT_NE(tpm, nullptr);
  std::string reg_id = EnrollStrict(*tpm);
  ExpectCliRefused(RegisterByCli(*tpm, {}), "tpm.attestationKey is required", reg_id);
  ExpectCliRefused(RegisterByCli(*tpm, {"--quote-pcrs", "0"}),
                   "measured boot: the quote covers PCRs sha256:0; the enrollment's policy "
                   "requires sha256:0,7",
                   reg_id);
}

TEST_F(DeviceCliAttestationTest, Rejects_TpmWithoutEkCertificate) {
  Swtpm* tpm = NewTpm("device");  // not manufactured: NV holds no EK certificate
  ASSERT_NE(tpm, nullptr);
  std::string reg_id = EnrollStrict(*tpm);
  ExpectCliRefused(RegisterByCli(*tpm, {"--quote-pcrs", "0,7"}), "an EK certificate is required",
                   reg_id);
}

}  // namespace
}  // namespace devid::testing
