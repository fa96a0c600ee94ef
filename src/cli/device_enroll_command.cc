#include "cli/device_enroll_command.h"

#include <openssl/x509.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "cli/connection_string.h"
#include "cli/device_command_runner.h"
#include "cli/device_commands.h"
#include "cli/device_pkcs11_commands.h"
#include "cli/flag_file.h"
#include "cli/output.h"
#include "devid/device_key.h"
#include "devid/est_client.h"
#include "keys/key_store.h"
#include "pki/chain_verifier.h"

namespace devid::cli {
namespace {

struct EnrollOptions {
  std::string symmetric_key_file;
  std::string pkcs11_sas_key;  // pkcs11: URI of the SAS key that import-symmetric stored
  std::string pkcs11_module;
  std::string key_uri;  // where to make the certificate's key
  std::string algorithm = "ecdsa-p256";
  std::string certificate_out;
  std::string registration_id;
  std::string id_scope;
  std::string endpoint;
  std::string server_name;
  std::string trust_bundle_file;
  std::string output = "table";
};

// ChainedPem verifies certificate to the trust bundle for TLS client use with the server's CA
// certificates as intermediates (RFC 5280 §6) and returns the path without its anchor, as PEM.
Result<std::string> ChainedPem(const pki::Certificate& certificate,
                               std::vector<pki::Certificate> intermediates,
                               const std::string& trust_bundle_pem) {
  auto anchors = pki::Certificate::AllFromPem(trust_bundle_pem);
  if (!anchors)
    return std::unexpected(InvalidArgument("the trust bundle holds no PEM certificate"));
  pki::ChainPolicy policy;
  policy.purpose = X509_PURPOSE_SSL_CLIENT;
  policy.check_revocation = false;  // just issued; the device holds no CRL
  auto path =
      pki::VerifyChain(certificate, intermediates, *anchors, {}, SystemClock().Now(), policy);
  if (!path) {
    return std::unexpected(Unauthenticated("the issued certificate (serial " +
                                           certificate.SerialHex() +
                                           ") does not verify to your trust bundle for TLS client "
                                           "use: " +
                                           path.error().message()));
  }
  std::string pem;
  for (size_t i = 0; i + 1 < path->size(); ++i) pem += (*path)[i].ToPem();
  return pem;
}

// EnrollWithKey obtains the certificate for the key at key_uri and proves it, setting pem to
// what the device keeps.
Result<pki::Certificate> EnrollWithKey(const EnrollOptions& options, sdk::EstClient& est,
                                       sdk::SasCredential& sas, const std::string& bundle,
                                       std::string& pem) {
  auto key = sdk::OpenDeviceKey(options.key_uri, {.pkcs11_module = options.pkcs11_module});
  if (!key) return std::unexpected(key.error().WithContext("opening the new key"));
  DEVID_ASSIGN_OR_RETURN(pki::Certificate certificate,
                         est.SimpleEnroll(**key, options.id_scope, options.registration_id, sas));
  DEVID_ASSIGN_OR_RETURN(std::vector<pki::Certificate> intermediates, est.CaCerts());
  DEVID_ASSIGN_OR_RETURN(pem, ChainedPem(certificate, std::move(intermediates), bundle));
  return certificate;
}

Status Enroll(const EnrollOptions& options) {
  if (options.symmetric_key_file.empty() == options.pkcs11_sas_key.empty()) {
    return std::unexpected(InvalidArgument(
        "device enroll: choose one of --symmetric-key-file and --pkcs11 for the SAS key"));
  }
  std::error_code ignored;
  if (std::filesystem::exists(options.certificate_out, ignored)) {
    return std::unexpected(AlreadyExists(
        "--cert-out: " + options.certificate_out +
        " exists; this device has a certificate already (renew it with devid device renew)"));
  }
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  DEVID_ASSIGN_OR_RETURN(std::string bundle,
                         ReadFlagFile(options.trust_bundle_file, "--trust-bundle"));
  // The SAS key first: a device that cannot sign its token gets no new key either.
  auto sas = options.pkcs11_sas_key.empty()
                 ? SymmetricKey("", options.symmetric_key_file, "--symmetric-key-file")
                 : OpenPkcs11SasKey(options.pkcs11_sas_key, options.pkcs11_module);
  if (!sas) return std::unexpected(sas.error());

  sdk::DeviceKeyOptions key_options{.pkcs11_module = options.pkcs11_module};
  auto created = sdk::CreateDeviceKey(options.key_uri, options.algorithm, key_options);
  if (!created) return std::unexpected(created.error().WithContext("--key: making the key"));
  sdk::EstClient est({.host = endpoint.host,
                      .port = endpoint.port,
                      .server_name = options.server_name,
                      .trust_bundle_pem = bundle});
  std::string pem;
  auto certificate = EnrollWithKey(options, est, **sas, bundle, pem);
  Status written = certificate ? WriteFileAtomically(options.certificate_out, pem, 0600)
                               : Status(std::unexpected(certificate.error()));
  if (!written) {
    // A key without a certificate is of no use; delete it so that enrolling again can make it.
    Status deleted = sdk::DeleteDeviceKey(options.key_uri, key_options);
    std::string fate = deleted ? ". The new key was deleted again"
                               : ". The new key " + *created + " could not be deleted (" +
                                     deleted.error().message() + "); delete it before retrying";
    return std::unexpected(Error(written.error().code(), written.error().message() + fate));
  }
  if (options.output == "json") {
    PrintJson(std::cout, {{"registrationId", certificate->SubjectCommonName()},
                          {"subject", certificate->SubjectName()},
                          {"serialNumber", certificate->SerialHex()},
                          {"key", *created},
                          {"certificate", options.certificate_out},
                          {"notAfter", FormatUtc(certificate->NotAfter())}});
    return Ok();
  }
  std::cout << "Enrolled: " << options.certificate_out
            << " holds this device's first certificate, for a new key.\n";
  PrintFields(std::cout, {{"Subject", certificate->SubjectName()},
                          {"Serial", certificate->SerialHex()},
                          {"Key", *created},
                          {"Valid until", FormatUtc(certificate->NotAfter())}});
  return Ok();
}

}  // namespace

void AddDeviceEnrollCommand(CLI::App& device, int& exit_code) {
  auto options = std::make_shared<EnrollOptions>();
  CLI::App* enroll = device.add_subcommand(
      "enroll", "Get this device's first certificate through EST, for a new key in its key store");
  enroll->add_option("--symmetric-key-file", options->symmetric_key_file,
                     "Authorize with a SAS token signed by the base64 symmetric key in this file");
  enroll->add_option("--pkcs11", options->pkcs11_sas_key,
                     "Authorize with a SAS token signed inside this PKCS #11 token "
                     "(pkcs11:token=LABEL;object=LABEL?pin-source=FILE)");
  enroll->add_option("--pkcs11-module", options->pkcs11_module,
                     "PKCS #11 library for URIs without module-path");
  enroll
      ->add_option("--key", options->key_uri,
                   "Make the certificate's key here: file:PATH?passphrase-env=NAME|"
                   "passphrase-file=PATH or pkcs11:token=LABEL;object=LABEL?pin-source=FILE")
      ->required();
  enroll->add_option("--algorithm", options->algorithm, "The new key's algorithm")
      ->check(CLI::IsMember({"ecdsa-p256", "ecdsa-p384"}))
      ->capture_default_str();
  enroll
      ->add_option("--cert-out", options->certificate_out,
                   "Write the certificate and its CA certificates here (PEM, mode 0600)")
      ->required();
  enroll->add_option("--registration-id", options->registration_id, "This device's registration ID")
      ->required();
  enroll->add_option("--id-scope", options->id_scope, "The service's ID scope")->required();
  enroll->add_option("--endpoint", options->endpoint, "EST server, https://HOST[:PORT]")
      ->required();
  enroll
      ->add_option("--trust-bundle", options->trust_bundle_file,
                   "PEM roots the server's and the new certificate must chain to")
      ->required();
  enroll->add_option("--server-name", options->server_name,
                     "Name the server certificate must carry (default: the endpoint's host)");
  enroll->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  enroll->callback([options, &exit_code] { ReportStatus(Enroll(*options), exit_code); });
}

}  // namespace devid::cli
