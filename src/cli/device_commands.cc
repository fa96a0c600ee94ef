#include "cli/device_commands.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file.h"
#include "cli/connection_string.h"
#include "cli/output.h"
#include "devid/credential.h"
#include "devid/provisioning_client.h"
#include "ossl/base64.h"
#include "tpm/public_area.h"

namespace devid::cli {
namespace {

using nlohmann::json;

// DeviceOptions holds the flags of the device commands; one command runs per process.
struct DeviceOptions {
  bool tpm = false;
  std::string tcti = "device:/dev/tpmrm0";
  std::string symmetric_key;  // base64; prefer --symmetric-key-file, which ps cannot show
  std::string symmetric_key_file;
  std::string id_scope;
  std::string endpoint;
  std::string server_name;
  std::string trust_bundle_file;
  std::string registration_id;
  std::string ek_out;
  std::string srk_out;
  std::vector<uint32_t> quote_pcrs;  // measured boot: the SHA-256 PCRs of the enrollment's policy
  std::string output = "table";
};

Status WritePublic(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (path.empty()) return Ok();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) return std::unexpected(InvalidArgument("cannot write " + path));
  return Ok();
}

// Show prints the TPM's identity: the registration ID DPS derives from its EK and the EK and SRK
// an operator enrolls (creating them when the TPM has none yet).
Status Show(const DeviceOptions& options) {
  if (!options.tpm) return std::unexpected(InvalidArgument("device show: only --tpm is supported"));
  DEVID_ASSIGN_OR_RETURN(auto tpm, sdk::OpenTpmCredential(options.tcti));
  DEVID_ASSIGN_OR_RETURN(auto ek, tpm->EndorsementKey());
  DEVID_ASSIGN_OR_RETURN(auto srk, tpm->StorageRootKey());
  DEVID_TRY(WritePublic(options.ek_out, ek));
  DEVID_TRY(WritePublic(options.srk_out, srk));
  std::string registration_id = tpm::RegistrationIdFromEk(ek);
  if (options.output == "json") {
    PrintJson(std::cout, {{"registrationId", registration_id},
                          {"tpm",
                           {{"endorsementKey", ossl::Base64Encode(ek)},
                            {"storageRootKey", ossl::Base64Encode(srk)}}}});
  } else {
    PrintFields(std::cout, {{"Registration ID", registration_id},
                            {"Endorsement key", ossl::Base64Encode(ek)},
                            {"Storage root key", ossl::Base64Encode(srk)}});
  }
  return Ok();
}

Result<sdk::ProvisioningOptions> ProvisioningOptionsFrom(const DeviceOptions& options) {
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  sdk::ProvisioningOptions out;
  out.host = endpoint.host;
  out.port = endpoint.port;
  out.server_name = options.server_name;
  auto bundle = ReadFile(options.trust_bundle_file);
  if (!bundle) return std::unexpected(bundle.error().WithContext("--trust-bundle"));
  out.trust_bundle_pem = std::move(*bundle);
  out.id_scope = options.id_scope;
  out.registration_id = options.registration_id;
  out.quote_pcrs = options.quote_pcrs;
  return out;
}

Result<std::unique_ptr<sdk::SasCredential>> SymmetricKey(const DeviceOptions& options) {
  if (options.symmetric_key_file.empty()) return sdk::SymmetricKeyCredential(options.symmetric_key);
  auto text = ReadFile(options.symmetric_key_file);
  if (!text) return std::unexpected(text.error().WithContext("--symmetric-key-file"));
  std::string_view key = *text;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.remove_suffix(1);
  auto credential = sdk::SymmetricKeyCredential(key);
  OPENSSL_cleanse(text->data(), text->size());
  return credential;
}

Status Register(const DeviceOptions& options) {
  bool symmetric = !options.symmetric_key.empty() || !options.symmetric_key_file.empty();
  if (options.tpm == symmetric) {
    return std::unexpected(InvalidArgument(
        "device register: choose one of --tpm, --symmetric-key, --symmetric-key-file"));
  }
  DEVID_ASSIGN_OR_RETURN(sdk::ProvisioningOptions provisioning, ProvisioningOptionsFrom(options));
  sdk::ProvisioningClient client(std::move(provisioning));
  Result<sdk::Assignment> assignment;
  if (options.tpm) {
    DEVID_ASSIGN_OR_RETURN(auto tpm, sdk::OpenTpmCredential(options.tcti));
    assignment = client.RegisterWithTpm(*tpm);
  } else {
    if (options.registration_id.empty()) {
      return std::unexpected(InvalidArgument("--registration-id is required with a symmetric key"));
    }
    DEVID_ASSIGN_OR_RETURN(auto key, SymmetricKey(options));
    assignment = client.RegisterWithSymmetricKey(*key);
  }
  if (!assignment) return std::unexpected(assignment.error());
  if (options.output == "json") {
    PrintJson(std::cout, {{"registrationId", assignment->registration_id},
                          {"assignedHub", assignment->assigned_hub},
                          {"deviceId", assignment->device_id},
                          {"substatus", assignment->substatus}});
  } else {
    PrintFields(std::cout, {{"Registration ID", assignment->registration_id},
                            {"Assigned hub", assignment->assigned_hub},
                            {"Device ID", assignment->device_id},
                            {"Substatus", assignment->substatus}});
  }
  return Ok();
}

void Run(Status (*command)(const DeviceOptions&), const DeviceOptions& options, int& exit_code) {
  // tpm2-tss logs its own warnings to stderr; the command reports each failure once, in its own
  // words. TSS2_LOG set by the user (e.g. all+debug) still wins.
  ::setenv("TSS2_LOG", "all+none", /*overwrite=*/0);
  Status status = command(options);
  if (!status) {
    std::cerr << "devid: " << status.error().message() << "\n";
    exit_code = 1;
  }
}

}  // namespace

void AddDeviceCommands(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<DeviceOptions>();
  CLI::App* device = app.add_subcommand("device", "Device side: register this device (SDK)");
  device->require_subcommand(1);

  CLI::App* reg = device->add_subcommand("register", "Register with the provisioning service");
  CLI::Option* tpm_flag = reg->add_flag("--tpm", options->tpm,
                                        "Attest with the TPM (EK challenge, key inside the TPM)");
  reg->add_option("--tcti", options->tcti, "TPM TCTI, e.g. swtpm:host=127.0.0.1,port=2321")
      ->capture_default_str();
  reg->add_option("--symmetric-key", options->symmetric_key,
                  "Attest with this base64 symmetric key (visible to ps: prefer the file)");
  reg->add_option("--symmetric-key-file", options->symmetric_key_file,
                  "Attest with the base64 symmetric key in this file");
  reg->add_option("--id-scope", options->id_scope, "The service's ID scope")->required();
  reg->add_option("--endpoint", options->endpoint, "Device endpoint, https://HOST[:PORT]")
      ->required();
  reg->add_option("--trust-bundle", options->trust_bundle_file,
                  "PEM roots the server's certificate must chain to")
      ->required();
  reg->add_option("--server-name", options->server_name,
                  "Name the server certificate must carry (default: the endpoint's host)");
  reg->add_option("--registration-id", options->registration_id,
                  "Registration ID (TPM default: derived from the EK)");
  reg->add_option("--quote-pcrs", options->quote_pcrs,
                  "Measured boot: quote these SHA-256 PCRs, the enrollment's PCR policy (e.g. "
                  "0,1,2,3,7), with the TPM's attestation key")
      ->delimiter(',')
      ->check(CLI::Range(0, 23))
      ->needs(tpm_flag);
  reg->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  reg->callback([options, &exit_code] { Run(Register, *options, exit_code); });

  CLI::App* show = device->add_subcommand("show", "Show this device's TPM identity");
  show->add_flag("--tpm", options->tpm, "Read (or create) the EK and SRK in the TPM")->required();
  show->add_option("--tcti", options->tcti, "TPM TCTI, e.g. swtpm:host=127.0.0.1,port=2321")
      ->capture_default_str();
  show->add_option("--ek-out", options->ek_out, "Write the EK's TPM2B_PUBLIC to this file");
  show->add_option("--srk-out", options->srk_out, "Write the SRK's TPM2B_PUBLIC to this file");
  show->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  show->callback([options, &exit_code] { Run(Show, *options, exit_code); });
}

}  // namespace devid::cli
