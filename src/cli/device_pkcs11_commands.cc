#include "cli/device_pkcs11_commands.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <iostream>
#include <string_view>

#include "base/file.h"
#include "cli/device_command_runner.h"
#include "cli/flag_file.h"
#include "cli/output.h"

namespace devid::cli {
namespace {

struct ImportOptions {
  std::string key_uri;
  std::string module;
  std::string symmetric_key_file;
  std::string symmetric_key_env;
  std::string output = "table";
};

// Explained prefixes a key store error with what a technician should check.
Error Explained(const Error& error) {
  const std::string& message = error.message();
  std::string_view hint;
  if (error.code() == ErrorCode::kPermissionDenied) {
    hint = "the token refused the PIN; check the file pin-source names";
  } else if (message.find("no PKCS #11 token matches") != std::string::npos) {
    hint = "no token with that label is present; `pkcs11-tool --list-token-slots` lists them";
  } else if (message.find("no symmetric key matches") != std::string::npos) {
    hint =
        "the token holds no symmetric key with that label; store it with `devid device key "
        "import-symmetric`";
  } else if (message.find("no default PKCS #11 module") != std::string::npos) {
    hint = "name the token's PKCS #11 library with --pkcs11-module";
  }
  if (hint.empty()) return error;
  return Error(error.code(), std::string(hint) + " (" + message + ")");
}

// ReadKeyBase64 returns the base64 key from the file or the environment variable, without
// trailing newlines; the caller cleanses it.
Result<std::string> ReadKeyBase64(const ImportOptions& options) {
  if (options.symmetric_key_file.empty() == options.symmetric_key_env.empty()) {
    return std::unexpected(InvalidArgument(
        "device key import-symmetric: give one of --symmetric-key-file, --symmetric-key-env"));
  }
  std::string text;
  if (!options.symmetric_key_env.empty()) {
    const char* value = std::getenv(options.symmetric_key_env.c_str());
    if (value == nullptr || *value == '\0') {
      return std::unexpected(
          InvalidArgument("--symmetric-key-env: " + options.symmetric_key_env + " is not set"));
    }
    text = value;
  } else {
    DEVID_ASSIGN_OR_RETURN(text, ReadFlagFile(options.symmetric_key_file, "--symmetric-key-file"));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

Status ImportSymmetric(const ImportOptions& options) {
  DEVID_ASSIGN_OR_RETURN(std::string key_base64, ReadKeyBase64(options));
  auto uri = sdk::ImportPkcs11SasKey(options.key_uri, key_base64, options.module);
  OPENSSL_cleanse(key_base64.data(), key_base64.size());
  if (!uri) return std::unexpected(Explained(uri.error()));
  if (options.output == "json") {
    PrintJson(std::cout, {{"key", *uri}, {"extractable", false}, {"sensitive", true}});
  } else {
    PrintFields(std::cout, {{"Key", *uri},
                            {"Stored",
                             "in the token; it computes SAS signatures and can never "
                             "be read back"}});
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<sdk::SasCredential>> OpenPkcs11SasKey(const std::string& uri,
                                                             const std::string& module) {
  auto key = sdk::OpenPkcs11SasCredential(uri, module);
  if (!key) return std::unexpected(Explained(key.error()));
  return key;
}

void AddDevicePkcs11Commands(CLI::App& device, int& exit_code) {
  CLI::App* key = KeySubcommand(device);

  auto options = std::make_shared<ImportOptions>();
  CLI::App* import_symmetric = key->add_subcommand(
      "import-symmetric", "Store this device's SAS key in a PKCS #11 token, where it stays");
  import_symmetric
      ->add_option("--key", options->key_uri,
                   "Where to store it: pkcs11:token=LABEL;object=LABEL?pin-source=FILE")
      ->required();
  import_symmetric->add_option("--pkcs11-module", options->module,
                               "PKCS #11 library for a --key without module-path");
  import_symmetric->add_option("--symmetric-key-file", options->symmetric_key_file,
                               "File holding the base64 key (the enrollment's primary key)");
  import_symmetric->add_option("--symmetric-key-env", options->symmetric_key_env,
                               "Environment variable holding the base64 key");
  import_symmetric->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  import_symmetric->callback(
      [options, &exit_code] { ReportStatus(ImportSymmetric(*options), exit_code); });
}

}  // namespace devid::cli
