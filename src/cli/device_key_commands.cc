#include "cli/device_key_commands.h"

#include <iostream>
#include <memory>
#include <string>

#include "base/file.h"
#include "cli/device_command_runner.h"
#include "cli/output.h"
#include "devid/device_key.h"

namespace devid::cli {
namespace {

struct KeyOptions {
  std::string key_uri;
  std::string algorithm = "ecdsa-p256";
  std::string pkcs11_module;
  std::string registration_id;
  std::string out_file;
  std::string output = "table";
};

Status CreateKey(const KeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string uri,
                         sdk::CreateDeviceKey(options.key_uri, options.algorithm,
                                              {.pkcs11_module = options.pkcs11_module}));
  if (options.output == "json") {
    PrintJson(std::cout, {{"key", uri}, {"algorithm", options.algorithm}});
  } else {
    PrintFields(std::cout, {{"Key", uri},
                            {"Algorithm", options.algorithm},
                            {"Next", "devid device csr --key URI --registration-id ID"}});
  }
  return Ok();
}

Status WriteCsr(const KeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(
      auto key, sdk::OpenDeviceKey(options.key_uri, {.pkcs11_module = options.pkcs11_module}));
  DEVID_ASSIGN_OR_RETURN(std::string pem,
                         sdk::CertificateSigningRequestPem(*key, options.registration_id));
  if (options.out_file.empty()) {
    std::cout << pem;
    return Ok();
  }
  return WriteFileAtomically(options.out_file, pem, 0644);
}

}  // namespace

void AddDeviceKeyCommands(CLI::App& device, int& exit_code) {
  CLI::App* key = KeySubcommand(device);
  auto options = std::make_shared<KeyOptions>();
  const std::string key_help =
      "file:PATH?passphrase-env=NAME|passphrase-file=PATH, "
      "pkcs11:token=LABEL;object=LABEL?pin-source=FILE or tpm2:handle=0x81000010?tcti=TCTI";

  CLI::App* create = key->add_subcommand(
      "create", "Make this device's signing key in a file or a PKCS #11 token, where it stays");
  create->add_option("--key", options->key_uri, "Where: " + key_help)->required();
  // No IsMember check: the SDK's refusal says why other algorithms cannot serve.
  create->add_option("--algorithm", options->algorithm, "ecdsa-p256 or ecdsa-p384")
      ->capture_default_str();
  create->add_option("--pkcs11-module", options->pkcs11_module,
                     "PKCS #11 library for a --key without module-path");
  create->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  create->callback([options, &exit_code] { RunDeviceCommand(CreateKey, *options, exit_code); });

  CLI::App* csr = device.add_subcommand(
      "csr", "Print a certificate request (PEM) for this device's key, for `devid ca issue`");
  csr->add_option("--key", options->key_uri, "The key: " + key_help)->required();
  csr->add_option("--registration-id", options->registration_id,
                  "The device's registration ID, the certificate's common name")
      ->required();
  csr->add_option("--pkcs11-module", options->pkcs11_module,
                  "PKCS #11 library for a --key without module-path");
  csr->add_option("--out", options->out_file, "Write the request to this file, not stdout");
  csr->callback([options, &exit_code] { RunDeviceCommand(WriteCsr, *options, exit_code); });
}

}  // namespace devid::cli
