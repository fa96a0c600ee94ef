// devid_sas_token_bench: DPS device SAS tokens per second (protocol notes §2.2) through the device
// SDK's SasCredential, with the key in software (OpenSSL HMAC in process), in a PKCS #11 token
// (CKM_SHA256_HMAC; SoftHSM2 in bench/sdk.sh) or in a TPM (TPM2_HMAC; swtpm). Each token is
// sdk::DeviceSasToken, what ProvisioningClient sends. Each back end's MAC is checked against a
// software HMAC under the same key before timing.
//
//   --software KEY_FILE        the base64 key in KEY_FILE, held in process memory
//   --pkcs11 URI --key-file F  the key F holds, already imported into the token at URI
//   --tcti TCTI                a fresh random key installed in the TPM through a DPS activation
//                              blob, as the TPM challenge does (the TPM is not thread-safe)

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/random.h"
#include "devid/credential.h"
#include "driver.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "sdk/device_sas_token.h"
#include "tpm/credential.h"
#include "tpm/public_area.h"

namespace devid::bench {
namespace {

constexpr char kMessage[] = "0ne00000000%2Fregistrations%2Fbench-device-0001\n1767225600";

int Fail(const std::string& message) {
  std::fprintf(stderr, "devid_sas_token_bench: %s\n", message.c_str());
  return 2;
}

Result<std::vector<uint8_t>> ReadKey(const std::string& path) {
  DEVID_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return ossl::Base64Decode(text);
}

// TpmWithKey opens the TPM at tcti and installs key as its DPS identity key.
Result<std::unique_ptr<sdk::SasCredential>> TpmWithKey(const std::string& tcti,
                                                       const std::vector<uint8_t>& key) {
  DEVID_ASSIGN_OR_RETURN(auto tpm, sdk::OpenTpmCredential(tcti));
  DEVID_ASSIGN_OR_RETURN(auto ek_bytes, tpm->EndorsementKey());
  DEVID_ASSIGN_OR_RETURN(auto srk_bytes, tpm->StorageRootKey());
  DEVID_ASSIGN_OR_RETURN(auto ek, tpm::ParseRsaPublic(ek_bytes));
  DEVID_ASSIGN_OR_RETURN(auto srk, tpm::ParseRsaPublic(srk_bytes));
  SecureRandom random;
  DEVID_ASSIGN_OR_RETURN(auto blob, tpm::BuildActivationBlob(ek, srk, key, random));
  DEVID_TRY(tpm->ActivateIdentityKey(blob));
  return std::unique_ptr<sdk::SasCredential>(std::move(tpm));
}

int Main(int argc, char** argv) {
  std::string software_key_file, pkcs11_uri, pkcs11_module, key_file, tcti, label, json_out;
  int threads = 1;
  double seconds = 3;
  CLI::App app{"devid_sas_token_bench: SAS tokens per second through the SDK's credentials"};
  auto* software = app.add_option("--software", software_key_file, "base64 key file");
  auto* pkcs11 = app.add_option("--pkcs11", pkcs11_uri, "pkcs11: URI of an imported SAS key");
  auto* tpm = app.add_option("--tcti", tcti, "TPM TCTI (swtpm:host=...,port=...)");
  software->excludes(pkcs11)->excludes(tpm);
  pkcs11->excludes(tpm);
  app.add_option("--pkcs11-module", pkcs11_module, "PKCS #11 module for a URI without one");
  app.add_option("--key-file", key_file, "with --pkcs11: the base64 key imported, to check MACs")
      ->needs(pkcs11);
  AddRunOptions(app, threads, "threads computing tokens (1 for a TPM)", seconds, label, json_out);
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || seconds <= 0) return Fail("--threads and --seconds must be positive");
  if (!tcti.empty() && threads != 1) return Fail("a TPM runs one command at a time: --threads 1");

  std::vector<uint8_t> key;
  Result<std::unique_ptr<sdk::SasCredential>> credential =
      std::unexpected(InvalidArgument("choose --software, --pkcs11 or --tcti"));
  std::string backend;
  if (!software_key_file.empty()) {
    backend = "software";
    auto read = ReadKey(software_key_file);
    if (!read) return Fail(read.error().message());
    key = *read;
    credential = sdk::SymmetricKeyCredential(ossl::Base64Encode(key));
  } else if (!pkcs11_uri.empty()) {
    backend = "pkcs11";
    if (key_file.empty()) return Fail("--pkcs11 needs --key-file to check the token's MACs");
    auto read = ReadKey(key_file);
    if (!read) return Fail(read.error().message());
    key = *read;
    credential = sdk::OpenPkcs11SasCredential(pkcs11_uri, pkcs11_module);
  } else if (!tcti.empty()) {
    backend = "tpm";
    key = SecureRandom().Bytes(32);
    credential = TpmWithKey(tcti, key);
  }
  if (!credential) return Fail(credential.error().message());
  sdk::SasCredential& sas = **credential;

  auto mac = sas.HmacSha256(kMessage);
  if (!mac) return Fail("computing the first MAC: " + mac.error().message());
  if (*mac != ossl::HmacSha256(key, kMessage)) {
    return Fail("the " + backend + " MAC differs from the software HMAC under the same key");
  }

  const std::string id_scope = "0ne00000000", registration_id = "bench-device-0001";
  RateResult run = MeasureRate(threads, seconds, [&] {
    return sdk::DeviceSasToken(sas, id_scope, registration_id).has_value();
  });
  nlohmann::json out = {{"label", label}, {"backend", backend}, {"threads", threads}};
  AddRateFields(out, run, "tokens");
  if (!WriteJsonFile(json_out, out)) return Fail("writing " + json_out);
  std::printf(
      "%s%s, %d threads: %.0f tokens/s (%.0f per CPU second of this process), latency ms p50 "
      "%.3f p99 %.3f, %llu failed\n",
      label.empty() ? "" : (label + ": ").c_str(), backend.c_str(), threads, run.PerSecond(),
      run.PerCpuSecond(), run.PercentileMs(0.50), run.PercentileMs(0.99),
      static_cast<unsigned long long>(run.failures));
  return run.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace devid::bench

int main(int argc, char** argv) {
  return devid::bench::RunDriver("devid_sas_token_bench", devid::bench::Main, argc, argv);
}
