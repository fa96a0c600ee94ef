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
#include "cli/device_command_runner.h"
#include "cli/device_enroll_command.h"
#include "cli/device_key_commands.h"
#include "cli/device_pkcs11_commands.h"
#include "cli/device_renew_command.h"
#include "cli/flag_file.h"
#include "cli/output.h"
#include "cli/verify_command.h"
#include "devid/credential.h"
#include "devid/provisioning_client.h"
#include "devid/provisioning_state.h"
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
  std::string secondary_key_file;  // the enrollment's other key, tried when the first is refused
  std::string state_file;  // register: the last assignment, to notice a move to another hub
  std::string pkcs11_key;  // pkcs11: URI of the SAS key that import-symmetric stored
  std::string pkcs11_module;
  bool x509 = false;
  std::string certificate_file;  // --x509: the device's chain, leaf first
  std::string key_uri;           // --x509: file:, pkcs11: or tpm2: URI of the leaf's key
  std::string csr_file;          // --x509: a request for devid to certify at registration
  std::string issued_out;        // --x509: where to write the certificate devid issued
  double renew_at = 2.0 / 3.0;   // show --cert: the share of the lifetime after which it is due
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
  if (!options.certificate_file.empty()) {
    return ShowDeviceCertificate(
        options.certificate_file, options.renew_at,
        options.output == "json" ? OutputFormat::kJson : OutputFormat::kTable);
  }
  if (!options.tpm) return std::unexpected(InvalidArgument("device show: choose --tpm or --cert"));
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
  DEVID_ASSIGN_OR_RETURN(std::string bundle,
                         ReadFlagFile(options.trust_bundle_file, "--trust-bundle"));
  out.trust_bundle_pem = std::move(bundle);
  out.id_scope = options.id_scope;
  out.registration_id = options.registration_id;
  out.quote_pcrs = options.quote_pcrs;
  return out;
}

}  // namespace

Result<std::unique_ptr<sdk::SasCredential>> SymmetricKey(const std::string& inline_key,
                                                         const std::string& file,
                                                         std::string_view flag) {
  if (file.empty()) return sdk::SymmetricKeyCredential(inline_key);
  DEVID_ASSIGN_OR_RETURN(std::string text, ReadFlagFile(file, flag));
  std::string_view key = text;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.remove_suffix(1);
  auto credential = sdk::SymmetricKeyCredential(key);
  OPENSSL_cleanse(text.data(), text.size());
  return credential;
}

namespace {

// RegisterWithX509 registers over mutual TLS with the certificate and the key in its store, and
// with --csr asks devid to certify another request (written to --issued-cert-out).
Result<sdk::Assignment> RegisterWithX509(sdk::ProvisioningClient& client,
                                         const DeviceOptions& options) {
  if (options.certificate_file.empty() || options.key_uri.empty()) {
    return std::unexpected(InvalidArgument("--x509 needs --cert FILE and --key URI"));
  }
  if (options.csr_file.empty() != options.issued_out.empty()) {
    return std::unexpected(InvalidArgument("--csr and --issued-cert-out go together"));
  }
  DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFlagFile(options.certificate_file, "--cert"));
  DEVID_ASSIGN_OR_RETURN(sdk::X509Credential credential,
                         sdk::X509Credential::Open(std::move(chain), options.key_uri,
                                                   {.pkcs11_module = options.pkcs11_module}));
  std::string csr;
  if (!options.csr_file.empty()) {
    DEVID_ASSIGN_OR_RETURN(std::string read, ReadFlagFile(options.csr_file, "--csr"));
    csr = std::move(read);
  }
  return client.RegisterWithX509(credential, csr);
}

Status Register(const DeviceOptions& options) {
  bool symmetric = !options.symmetric_key.empty() || !options.symmetric_key_file.empty();
  bool pkcs11 = !options.pkcs11_key.empty();
  if (int(options.tpm) + int(symmetric) + int(pkcs11) + int(options.x509) != 1) {
    return std::unexpected(InvalidArgument("device register: choose one of --tpm, --x509, "
                                           "--symmetric-key, --symmetric-key-file, --pkcs11"));
  }
  DEVID_ASSIGN_OR_RETURN(sdk::ProvisioningOptions provisioning, ProvisioningOptionsFrom(options));
  sdk::ProvisioningClient client(std::move(provisioning));
  Result<sdk::Assignment> assignment;
  if (options.tpm) {
    DEVID_ASSIGN_OR_RETURN(auto tpm, sdk::OpenTpmCredential(options.tcti));
    assignment = client.RegisterWithTpm(*tpm);
  } else if (options.x509) {
    assignment = RegisterWithX509(client, options);
  } else if (pkcs11) {
    if (options.registration_id.empty()) {
      return std::unexpected(InvalidArgument("--registration-id is required with --pkcs11"));
    }
    DEVID_ASSIGN_OR_RETURN(auto key, OpenPkcs11SasKey(options.pkcs11_key, options.pkcs11_module));
    assignment = client.RegisterWithSymmetricKey(*key);
  } else {
    if (options.registration_id.empty()) {
      return std::unexpected(InvalidArgument("--registration-id is required with a symmetric key"));
    }
    DEVID_ASSIGN_OR_RETURN(
        auto key,
        SymmetricKey(options.symmetric_key, options.symmetric_key_file, "--symmetric-key-file"));
    if (options.secondary_key_file.empty()) {
      assignment = client.RegisterWithSymmetricKey(*key);
    } else {
      DEVID_ASSIGN_OR_RETURN(auto secondary,
                             SymmetricKey("", options.secondary_key_file, "--secondary-key-file"));
      assignment = client.RegisterWithSymmetricKeys(*key, *secondary);
    }
  }
  if (!assignment) return std::unexpected(assignment.error());
  if (!options.state_file.empty()) {
    // A device whose hub refuses it registers again; the saved state tells whether it moved.
    DEVID_ASSIGN_OR_RETURN(auto previous, sdk::LoadAssignment(options.state_file));
    if (sdk::HubMoved(previous, *assignment)) {
      std::cerr << "devid: the service moved this device from hub " << previous->assigned_hub
                << " to hub " << assignment->assigned_hub << "; connect to the new hub\n";
    }
    DEVID_TRY(sdk::SaveAssignment(options.state_file, *assignment));
  }
  if (!options.issued_out.empty()) {
    DEVID_TRY(WriteFileAtomically(options.issued_out, assignment->issued_certificate_chain_pem,
                                  0644));
  }
  if (assignment->secondary_key_used) {
    std::cerr << "devid: the service rejected the primary key and accepted the secondary one; "
                 "make the secondary key this device's primary\n";
  }
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
  reg->add_option("--state", options->state_file,
                  "Remember the assignment in this file and say when the device moved hubs");
  reg->add_option("--secondary-key-file", options->secondary_key_file,
                  "The enrollment's secondary key (base64, in a file): used when the service "
                  "rejects the first key, e.g. after the operator rolled it");
  reg->add_option("--pkcs11", options->pkcs11_key,
                  "Attest with the symmetric key in this PKCS #11 token, signing inside it "
                  "(pkcs11:token=LABEL;object=LABEL?pin-source=FILE)");
  reg->add_option("--pkcs11-module", options->pkcs11_module,
                  "PKCS #11 library for a --pkcs11 URI without module-path");
  reg->add_flag("--x509", options->x509,
                "Attest with an X.509 certificate over mutual TLS, signing inside the key store");
  reg->add_option("--cert", options->certificate_file,
                  "--x509: the device certificate chain (PEM, leaf first)");
  reg->add_option("--key", options->key_uri,
                  "--x509: its key, file:PATH?passphrase-env=NAME|passphrase-file=PATH, "
                  "pkcs11:token=LABEL;object=LABEL?pin-source=FILE or "
                  "tpm2:handle=0x81000010?tcti=TCTI");
  reg->add_option("--csr", options->csr_file,
                  "--x509: also have devid certify this request (PEM, CN = registration ID)");
  reg->add_option("--issued-cert-out", options->issued_out,
                  "--x509 --csr: write the certificate devid issued (PEM chain) here");
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
  reg->callback([options, &exit_code] { RunDeviceCommand(Register, *options, exit_code); });

  CLI::App* show = device->add_subcommand("show", "Show this device's TPM identity or certificate");
  CLI::Option* show_tpm =
      show->add_flag("--tpm", options->tpm, "Read (or create) the EK and SRK in the TPM");
  show->add_option("--cert", options->certificate_file,
                   "Show this PEM certificate: identity, issuer, expiry, when renewal is due")
      ->excludes(show_tpm);
  show->add_option("--renew-at", options->renew_at,
                   "--cert: fraction of the lifetime after which renewal is due")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  show->add_option("--tcti", options->tcti, "TPM TCTI, e.g. swtpm:host=127.0.0.1,port=2321")
      ->capture_default_str();
  show->add_option("--ek-out", options->ek_out, "Write the EK's TPM2B_PUBLIC to this file");
  show->add_option("--srk-out", options->srk_out, "Write the SRK's TPM2B_PUBLIC to this file");
  show->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  show->callback([options, &exit_code] { RunDeviceCommand(Show, *options, exit_code); });

  AddVerifyCommand(*device, exit_code);

  AddDevicePkcs11Commands(*device, exit_code);
  AddDeviceKeyCommands(*device, exit_code);
  AddDeviceRenewCommand(*device, exit_code);
  AddDeviceEnrollCommand(*device, exit_code);
}

}  // namespace devid::cli
