#include "cli/operator_commands.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "cli/connection.h"
#include "cli/duration.h"
#include "cli/flag_file.h"
#include "cli/output.h"
#include "cli/service_client.h"
#include "ossl/base64.h"
#include "pki/certificate.h"
#include "pki/sas_token.h"
#include "tpm/public_area.h"

namespace devid::cli {
namespace {

using nlohmann::json;

// Options holds every flag of every operator command; only one command runs per process.
struct Options {
  ConnectionOptions connection;
  std::string output = "table";
  std::string id;  // the positional ID of show, enable, disable and delete
  int page_size = 0;
  // add
  std::string registration_id;
  std::string device_id;
  std::string group_id;
  std::string prefix;
  std::string primary_key;
  std::string secondary_key;
  bool disabled = false;
  std::vector<std::string> hubs;
  std::string allocation;
  std::string initial_twin;
  std::string tpm_ek_file;   // TPM2B_PUBLIC files, as tpm2_createek -u / tpm2_readpublic -o write
  std::string tpm_srk_file;
  std::string x509_cert_file;            // X.509 attestation: the device's certificate (PEM)
  std::string x509_secondary_cert_file;  // and the one that may replace it
  // command send
  std::string command_json;
  int command_ttl = 300;
  std::string command_out;
  // keys derive
  std::string group_key;
  // cert list / revoke
  std::string expiring;  // a duration: 30d, 12h, 90m, 3600s
  std::string serial;
  std::string thumbprint;
  bool revoked = false;
  std::string reason = "unspecified";
  // ca-certificate, group add --ca-reference
  std::string certificate_file;  // PEM
  std::string ca_reference;
  std::string secondary_ca_reference;

  OutputFormat format() const {
    return output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  }
};

// Kind is where individual enrollments and groups differ; every route has the same shape
// (protocol notes §6).
struct Kind {
  std::string_view collection;  // path segment
  std::string_view noun;
  std::string_view query;
  void (*print_list)(std::ostream&, const json&);
  void (*print_one)(std::ostream&, const json&, bool with_keys);
};

const Kind kEnrollments = {"enrollments", "enrollment", "SELECT * FROM enrollments",
                           PrintEnrollmentList, PrintEnrollment};
const Kind kGroups = {"enrollmentGroups", "enrollment group", "SELECT * FROM enrollmentGroups",
                      PrintGroupList, PrintGroup};

Result<ServiceClient> Connect(const Options& options) {
  DEVID_ASSIGN_OR_RETURN(Connection connection, ResolveConnection(options.connection));
  static const SystemClock clock;
  return ServiceClient::Connect(connection, clock);
}

std::string Quoted(std::string_view id) { return "\"" + std::string(id) + "\""; }

// SettingsJson renders the flags enrollments and groups share as their JSON fields.
Result<json> SettingsJson(const Options& options) {
  json body;
  json keys = json::object();
  if (!options.primary_key.empty()) keys["primaryKey"] = options.primary_key;
  if (!options.secondary_key.empty()) keys["secondaryKey"] = options.secondary_key;
  body["attestation"] = {{"type", "symmetricKey"}, {"symmetricKey", keys}};
  body["provisioningStatus"] = options.disabled ? "disabled" : "enabled";
  if (!options.hubs.empty()) body["iotHubs"] = options.hubs;
  if (!options.allocation.empty()) body["allocationPolicy"] = options.allocation;
  if (!options.initial_twin.empty()) {
    json twin = json::parse(options.initial_twin, nullptr, /*allow_exceptions=*/false);
    if (twin.is_discarded() || !twin.is_object()) {
      return std::unexpected(InvalidArgument("--initial-twin: not a JSON object"));
    }
    body["initialTwin"] = std::move(twin);
  }
  return body;
}

// ReadTpmPublic reads a TPM2B_PUBLIC file and checks it is an RSA public area devid can
// challenge (protocol notes §4.1).
Result<std::vector<uint8_t>> ReadTpmPublic(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(InvalidArgument(std::string(flag) + ": cannot read " + path));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (auto key = tpm::ParseRsaPublic(bytes); !key) {
    return std::unexpected(key.error().WithContext(std::string(flag) + " " + path));
  }
  return bytes;
}

// TpmAttestation makes an enrollment TPM-attested from --tpm-ek (and --tpm-srk); the registration
// ID defaults to Azure's rule for the EK (lowercase unpadded base32 of SHA-256 of its
// TPM2B_PUBLIC).
Status TpmAttestation(const Options& options, json& body, std::string& registration_id) {
  if (!options.primary_key.empty() || !options.secondary_key.empty()) {
    return std::unexpected(
        InvalidArgument("--tpm-ek: a TPM enrollment has no --primary-key or --secondary-key"));
  }
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> ek, ReadTpmPublic(options.tpm_ek_file, "--tpm-ek"));
  json tpm = {{"endorsementKey", ossl::Base64Encode(ek)}};
  if (!options.tpm_srk_file.empty()) {
    DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> srk,
                           ReadTpmPublic(options.tpm_srk_file, "--tpm-srk"));
    tpm["storageRootKey"] = ossl::Base64Encode(srk);
  }
  body["attestation"] = {{"type", "tpm"}, {"tpm", std::move(tpm)}};
  if (registration_id.empty()) registration_id = tpm::RegistrationIdFromEk(ek);
  return Ok();
}

// X509Attestation makes an enrollment X.509-attested by the device's own certificates
// (--x509-cert, --x509-secondary-cert): the service matches the presented leaf by thumbprint. The
// registration ID defaults to the certificate's common name, which the device must present as
// its registration ID anyway.
Status X509Attestation(const Options& options, json& body, std::string& registration_id) {
  if (!options.primary_key.empty() || !options.secondary_key.empty()) {
    return std::unexpected(InvalidArgument(
        "--x509-cert: an X.509 enrollment has no --primary-key or --secondary-key"));
  }
  json certificates = json::object();
  for (auto [slot, file, flag] :
       {std::tuple("primary", &options.x509_cert_file, "--x509-cert"),
        std::tuple("secondary", &options.x509_secondary_cert_file, "--x509-secondary-cert")}) {
    if (file->empty()) continue;
    DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFlagFile(*file, flag));
    auto certificate = pki::Certificate::FromPem(pem);
    if (!certificate) {
      return std::unexpected(InvalidArgument(std::string(flag) + " " + *file +
                                             ": not a PEM certificate"));
    }
    if (registration_id.empty()) registration_id = certificate->SubjectCommonName();
    certificates[slot] = {{"certificate", certificate->ToPem()}};
  }
  body["attestation"] = {{"type", "x509"}, {"x509", {{"clientCertificates", certificates}}}};
  return Ok();
}

// Create creates an enrollment or group. PUT alone would replace an existing one (and its keys), so
// it first checks that the ID is free.
Status Create(const Kind& kind, const Options& options, std::string_view id, json body) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  std::string path = ServicePath(kind.collection, id);
  auto existing = client.Get(path);
  if (existing) {
    return std::unexpected(
        AlreadyExists(std::string(kind.noun) + " " + Quoted(id) + " already exists"));
  }
  if (existing.error().code() != ErrorCode::kNotFound) return std::unexpected(existing.error());
  DEVID_ASSIGN_OR_RETURN(ServiceResponse created, client.Put(path, body));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, created.body);
  } else {
    kind.print_one(std::cout, created.body, /*with_keys=*/true);
  }
  return Ok();
}

Status Show(const Kind& kind, const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(ServiceResponse got, client.Get(ServicePath(kind.collection, options.id)));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, got.body);
  } else {
    kind.print_one(std::cout, got.body, /*with_keys=*/true);
  }
  return Ok();
}

Status List(const Kind& kind, const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(json items, client.QueryAll("/" + std::string(kind.collection) + "/query",
                                                     {{"query", kind.query}}, options.page_size));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, items);
  } else {
    kind.print_list(std::cout, items);
  }
  return Ok();
}

// SetEnabled reads the object and writes it back with provisioningStatus changed, conditional on
// the etag it read so that a concurrent change is not overwritten.
Status SetEnabled(const Kind& kind, const Options& options, bool enabled) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  std::string path = ServicePath(kind.collection, options.id);
  DEVID_ASSIGN_OR_RETURN(ServiceResponse got, client.Get(path));
  json item = std::move(got.body);
  std::string status = enabled ? "enabled" : "disabled";
  if (!item.is_object()) {
    return std::unexpected(Internal("GET " + path + ": the response is not an object"));
  }
  if (item.value("provisioningStatus", "") != status) {
    std::string etag = item.value("etag", "");
    for (const char* read_only :
         {"registrationState", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"}) {
      item.erase(read_only);
    }
    item["provisioningStatus"] = status;
    DEVID_ASSIGN_OR_RETURN(ServiceResponse put, client.Put(path, item, etag));
    item = std::move(put.body);
  }
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, item);
  } else {
    kind.print_one(std::cout, item, /*with_keys=*/false);
  }
  return Ok();
}

Status Delete(std::string_view collection, std::string_view noun, const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_TRY(client.Delete(ServicePath(collection, options.id)));
  // JSON output stays empty: the service answers 204 with no body.
  if (options.format() == OutputFormat::kTable) {
    std::cout << "Deleted " << noun << " " << Quoted(options.id) << ".\n";
  }
  return Ok();
}

Status ShowRegistration(const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(ServiceResponse got, client.Get(ServicePath("registrations", options.id)));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, got.body);
  } else {
    PrintRegistration(std::cout, got.body);
  }
  return Ok();
}

Status ListRegistrations(const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(json items,
                         client.QueryAll(ServicePath("registrations", options.group_id, "query"),
                                         json::object(), options.page_size));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, items);
  } else {
    PrintRegistrationList(std::cout, items);
  }
  return Ok();
}

Status DeriveKey(const Options& options) {
  DEVID_ASSIGN_OR_RETURN(std::string key,
                         pki::DeriveSymmetricKey(options.group_key, options.registration_id));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, {{"registrationId", options.registration_id}, {"derivedKey", key}});
  } else {
    std::cout << key << "\n";
  }
  return Ok();
}

Status ListCertificates(const Options& options) {
  json filter = json::object();
  if (!options.device_id.empty()) filter["deviceId"] = options.device_id;
  if (options.revoked) filter["revoked"] = true;
  if (!options.expiring.empty()) {
    DEVID_ASSIGN_OR_RETURN(int64_t seconds, ParseDuration(options.expiring));
    filter["expiringWithinSeconds"] = seconds;
    filter["revoked"] = false;  // a revoked certificate needs no renewal
  }
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(json items,
                         client.QueryAll(ServicePath("certificates", "query"), filter,
                                         options.page_size));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, items);
  } else {
    PrintCertificateList(std::cout, items);
  }
  return Ok();
}

// ShowCertificate finds a certificate by thumbprint, or by serial number through a query.
Status ShowCertificate(const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  std::string thumbprint = options.id;
  std::string digits;
  for (char c : options.id) {
    if (c != ':') digits += c;
  }
  if (digits.size() != 64 && digits.size() != 40) {
    DEVID_ASSIGN_OR_RETURN(json found, client.QueryAll(ServicePath("certificates", "query"),
                                                       {{"serialNumber", options.id}}, 0));
    if (found.empty()) {
      return std::unexpected(NotFound("no certificate with serial number " + options.id));
    }
    thumbprint = found.front().value("sha256Thumbprint", "");
  }
  DEVID_ASSIGN_OR_RETURN(ServiceResponse got,
                         client.Get(ServicePath("certificates", thumbprint)));
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, got.body);
  } else {
    PrintCertificate(std::cout, got.body);
  }
  return Ok();
}

Status RevokeCertificates(const Options& options) {
  json body = {{"reason", options.reason}};
  for (const auto& [field, value] : {std::pair{"serialNumber", &options.serial},
                                     std::pair{"thumbprint", &options.thumbprint},
                                     std::pair{"deviceId", &options.device_id}}) {
    if (!value->empty()) body[field] = *value;
  }
  if (body.size() != 2) {
    return std::unexpected(InvalidArgument("give exactly one of --serial, --thumbprint, --device"));
  }
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(ServiceResponse revoked,
                         client.Post(ServicePath("certificates", "revoke"), body));
  const json& items = revoked.body["revoked"];
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, revoked.body);
  } else if (items.empty()) {
    std::cout << "Already revoked; nothing changed.\n";
  } else {
    PrintCertificateList(std::cout, items);
  }
  return Ok();
}

// SendCommand has the server sign a command for one device (docs/commands.md) and prints or
// writes the envelope, which reaches the device by whatever channel the operator has.
Status SendCommand(const Options& options) {
  json command = json::parse(options.command_json, nullptr, /*allow_exceptions=*/false);
  if (command.is_discarded() || !command.is_object()) {
    return std::unexpected(InvalidArgument("--json must be a JSON object"));
  }
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  DEVID_ASSIGN_OR_RETURN(
      ServiceResponse sent,
      client.Post(ServicePath("devices", options.id, "commands") +
                      "?ttl=" + std::to_string(options.command_ttl),
                  command));
  std::string envelope = sent.body.value("envelope", "");
  if (!options.command_out.empty()) {
    DEVID_TRY(WriteFileAtomically(options.command_out, envelope + "\n", 0644));
  }
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, sent.body);
    return Ok();
  }
  PrintFields(std::cout,
              {{"Device", sent.body.value("deviceId", "")},
               {"Sequence", std::to_string(sent.body.value("sequence", int64_t{0}))},
               {"Issued", sent.body.value("issuedAt", "")},
               {"Expires", sent.body.value("expiresAt", "")},
               {"Signer", sent.body.value("signerThumbprint", "")},
               {"Envelope", options.command_out.empty() ? envelope
                                                        : "written to " + options.command_out}});
  return Ok();
}

// ReadPemFile reads a PEM certificate file for flag.
Result<std::string> ReadPemFile(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(InvalidArgument(std::string(flag) + ": cannot read " + path));
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void PrintCaCertificate(std::ostream& out, const json& c) {
  PrintFields(out, {{"Name", c.value("name", "")},
                    {"Subject", c.value("subject", "")},
                    {"Issuer", c.value("issuer", "")},
                    {"SHA-256", c.value("sha256Thumbprint", "")},
                    {"Verified", c.value("isVerified", false) ? "yes" : "no"},
                    {"Not after", c.value("notAfter", "")},
                    {"Code expires", c.value("verificationCodeExpires", "")},
                    {"Etag", c.value("etag", "")}});
  if (c.contains("certificate")) out << c.value("certificate", "");
}

// CaCertificateCommand runs one ca-certificate subcommand (CaCertificateApi routes).
Status CaCertificateCommand(std::string_view verb, const Options& options) {
  DEVID_ASSIGN_OR_RETURN(ServiceClient client, Connect(options));
  std::string path = ServicePath("caCertificates", options.id);
  ServiceResponse answer;
  if (verb == "list") {
    DEVID_ASSIGN_OR_RETURN(answer, client.Get("/caCertificates"));
    if (options.format() == OutputFormat::kJson) {
      PrintJson(std::cout, answer.body);
      return Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& c : answer.body) {
      rows.push_back({c.value("name", ""), c.value("isVerified", false) ? "yes" : "no",
                      c.value("subject", ""), c.value("notAfter", "")});
    }
    PrintTable(std::cout, {"NAME", "VERIFIED", "SUBJECT", "NOT AFTER"}, rows);
    return Ok();
  }
  if (verb == "delete") {
    DEVID_TRY(client.Delete(path));
    if (options.format() == OutputFormat::kTable) {
      std::cout << "Deleted CA certificate " << Quoted(options.id) << ".\n";
    }
    return Ok();
  }
  if (verb == "show") {
    DEVID_ASSIGN_OR_RETURN(answer, client.Get(path));
  } else if (verb == "verification-code") {
    DEVID_ASSIGN_OR_RETURN(answer, client.Post(path + "/verificationCode", json::object()));
  } else {
    DEVID_ASSIGN_OR_RETURN(std::string pem, ReadPemFile(options.certificate_file, "--certificate"));
    json body = {{"certificate", pem}};
    if (verb == "add") {
      // add never replaces: a replaced CA loses its verification.
      auto existing = client.Get(path);
      if (existing) {
        return std::unexpected(
            AlreadyExists("CA certificate " + Quoted(options.id) + " already exists"));
      }
      if (existing.error().code() != ErrorCode::kNotFound) return std::unexpected(existing.error());
      DEVID_ASSIGN_OR_RETURN(answer, client.Put(path, body));
    } else {
      DEVID_ASSIGN_OR_RETURN(answer, client.Post(path + "/verify", body));
    }
  }
  if (options.format() == OutputFormat::kJson) {
    PrintJson(std::cout, answer.body);
  } else if (verb == "verification-code") {
    std::string code = answer.body.value("verificationCode", "");
    std::cout << code << "\n"
              << "Sign a certificate with subject CN=" << code << " with this CA's key before "
              << answer.body.value("verificationCodeExpires", "") << ", then run\n"
              << "  devid ca-certificate verify " << options.id << " --certificate FILE\n";
  } else {
    PrintCaCertificate(std::cout, answer.body);
  }
  return Ok();
}

// Commands adds the subcommands and runs the chosen one, reporting its failure.
class Commands {
 public:
  Commands(CLI::App& app, int& exit_code)
      : app_(app), exit_code_(exit_code), options_(std::make_shared<Options>()) {}

  void Add();

 private:
  // Leaf adds a command whose action runs with the parsed options.
  CLI::App* Leaf(CLI::App* parent, std::string name, std::string description,
                 std::function<Status(const Options&)> action, bool needs_service = true) {
    CLI::App* cmd = parent->add_subcommand(std::move(name), std::move(description));
    Options& o = *options_;
    cmd->add_option("-o,--output", o.output, "Output format")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    if (needs_service) {
      cmd->add_option("--connection", o.connection.file, "connection.json written by `devid serve`")
          ->envname("DEVID_CONNECTION")
          ->capture_default_str();
      cmd->add_option("--connection-string", o.connection.connection_string,
                      "Service connection string (HostName=…;SharedAccessKeyName=…;"
                      "SharedAccessKey=…)");
      cmd->add_option("--endpoint", o.connection.endpoint, "Service endpoint https://HOST:PORT");
      cmd->add_option("--trust-bundle", o.connection.trust_bundle_file,
                      "PEM file of the CA certificates to trust");
    }
    cmd->callback([options = options_, action = std::move(action), &exit_code = exit_code_] {
      Status status = action(*options);
      if (!status) {
        std::cout.flush();
        std::cerr << "devid: " << status.error().message() << "\n";
        exit_code = 1;
      }
    });
    return cmd;
  }

  // AddSettingsFlags adds the flags enrollments and groups share.
  void AddSettingsFlags(CLI::App* cmd) {
    Options& o = *options_;
    cmd->add_option("--primary-key", o.primary_key, "Base64 primary key (generated when omitted)");
    cmd->add_option("--secondary-key", o.secondary_key,
                    "Base64 secondary key (generated when omitted)");
    cmd->add_flag("--disabled", o.disabled, "Create it disabled");
    cmd->add_option("--hub", o.hubs, "IoT hub host name it may assign to (repeatable)");
    cmd->add_option("--allocation", o.allocation, "Allocation policy")
        ->check(CLI::IsMember({"hashed", "static"}));
    cmd->add_option("--initial-twin", o.initial_twin, "Initial twin as a JSON object");
  }

  void AddCollection(CLI::App* parent, const Kind& kind, std::string id_name) {
    Options& o = *options_;
    Leaf(parent, "show", "Show one " + std::string(kind.noun) + ", with its keys",
         [&kind](const Options& options) { return Show(kind, options); })
        ->add_option("id", o.id, id_name)
        ->required();
    Leaf(parent, "list", "List every " + std::string(kind.noun) + " (no keys)",
         [&kind](const Options& options) { return List(kind, options); })
        ->add_option("--page-size", o.page_size, "Items per request (0: the server's default)")
        ->check(CLI::NonNegativeNumber);
    Leaf(parent, "disable", "Disable an " + std::string(kind.noun) + " (refuses registrations)",
         [&kind](const Options& options) { return SetEnabled(kind, options, false); })
        ->add_option("id", o.id, id_name)
        ->required();
    Leaf(parent, "enable", "Enable an " + std::string(kind.noun) + " again",
         [&kind](const Options& options) { return SetEnabled(kind, options, true); })
        ->add_option("id", o.id, id_name)
        ->required();
    Leaf(parent, "delete", "Delete an " + std::string(kind.noun),
         [&kind](const Options& options) { return Delete(kind.collection, kind.noun, options); })
        ->add_option("id", o.id, id_name)
        ->required();
  }

  CLI::App& app_;
  int& exit_code_;
  std::shared_ptr<Options> options_;
};

void Commands::Add() {
  Options& o = *options_;

  CLI::App* enrollment =
      app_.add_subcommand("enrollment", "Individual enrollments (symmetric key, TPM or X.509)");
  enrollment->require_subcommand(1);
  CLI::App* add = Leaf(
      enrollment, "add", "Create an individual enrollment", [](const Options& options) -> Status {
        DEVID_ASSIGN_OR_RETURN(json body, SettingsJson(options));
        std::string registration_id = options.registration_id;
        if (!options.tpm_ek_file.empty()) {
          DEVID_TRY(TpmAttestation(options, body, registration_id));
        } else if (!options.x509_cert_file.empty()) {
          DEVID_TRY(X509Attestation(options, body, registration_id));
        }
        if (registration_id.empty()) {
          return std::unexpected(InvalidArgument("--registration-id is required"));
        }
        body["registrationId"] = registration_id;
        if (!options.device_id.empty()) body["deviceId"] = options.device_id;
        return Create(kEnrollments, options, registration_id, std::move(body));
      });
  add->add_option("--registration-id", o.registration_id,
                  "Registration ID (required, but for TPM: from the EK by default)");
  CLI::Option* tpm_ek = add->add_option(
      "--tpm-ek", o.tpm_ek_file, "TPM attestation: the EK's TPM2B_PUBLIC file (tpm2_createek -u)");
  add->add_option("--tpm-srk", o.tpm_srk_file, "TPM attestation: the SRK's TPM2B_PUBLIC file")
      ->needs(tpm_ek);
  CLI::Option* x509_cert = add->add_option(
      "--x509-cert", o.x509_cert_file,
      "X.509 attestation: the device's certificate (PEM); registration ID = its CN by default");
  x509_cert->excludes(tpm_ek);
  add->add_option("--x509-secondary-cert", o.x509_secondary_cert_file,
                  "X.509 attestation: a second certificate the device may present")
      ->needs(x509_cert);
  add->add_option("--device-id", o.device_id, "Device ID (default: the registration ID)");
  AddSettingsFlags(add);
  AddCollection(enrollment, kEnrollments, "Registration ID");

  CLI::App* group =
      app_.add_subcommand("group", "Enrollment groups (symmetric key, or X.509 over verified CAs)");
  group->require_subcommand(1);
  add = Leaf(group, "add", "Create an enrollment group", [](const Options& options) -> Status {
    DEVID_ASSIGN_OR_RETURN(json body, SettingsJson(options));
    if (!options.ca_reference.empty()) {
      json references = {{"primary", options.ca_reference}};
      if (!options.secondary_ca_reference.empty()) {
        references["secondary"] = options.secondary_ca_reference;
      }
      body["attestation"] = {{"type", "x509"}, {"x509", {{"caReferences", references}}}};
    }
    body["enrollmentGroupId"] = options.group_id;
    if (!options.prefix.empty()) body["registrationIdPrefix"] = options.prefix;
    return Create(kGroups, options, options.group_id, std::move(body));
  });
  add->add_option("--group-id", o.group_id, "Enrollment group ID")->required();
  add->add_option("--registration-id-prefix", o.prefix,
                  "Admit only registration IDs with this prefix");
  CLI::Option* ca_reference = add->add_option(
      "--ca-reference", o.ca_reference,
      "X.509: admit devices whose chain leads to this verified CA certificate (by name)");
  add->add_option("--secondary-ca-reference", o.secondary_ca_reference,
                  "X.509: a second verified CA certificate")
      ->needs(ca_reference);
  AddSettingsFlags(add);
  AddCollection(group, kGroups, "Enrollment group ID");

  CLI::App* ca_certificate = app_.add_subcommand(
      "ca-certificate", "CA certificates that back X.509 enrollment groups (proof of possession)");
  ca_certificate->require_subcommand(1);
  for (auto [verb, description, needs_file] :
       {std::tuple{"add", "Upload a root or intermediate CA certificate (unverified)", true},
        std::tuple{"show", "Show one CA certificate with its PEM", false},
        std::tuple{"delete", "Delete a CA certificate no enrollment group references", false},
        std::tuple{"verification-code", "Generate a one-time verification code", false},
        std::tuple{"verify", "Prove possession: a certificate with CN = the code, signed by the CA",
                   true}}) {
    std::string name = verb;
    CLI::App* cmd = Leaf(ca_certificate, name, description, [name](const Options& options) {
      return CaCertificateCommand(name, options);
    });
    cmd->add_option("name", o.id, "CA certificate name")->required();
    if (needs_file) {
      cmd->add_option("--certificate", o.certificate_file, "PEM file")
          ->required()
          ->check(CLI::ExistingFile);
    }
  }
  Leaf(ca_certificate, "list", "List CA certificates and whether they are verified",
       [](const Options& options) { return CaCertificateCommand("list", options); });

  CLI::App* registration = app_.add_subcommand("registration", "Device registration states");
  registration->require_subcommand(1);
  Leaf(registration, "show", "Show a device's registration state", ShowRegistration)
      ->add_option("id", o.id, "Registration ID")
      ->required();
  CLI::App* list = Leaf(registration, "list", "List the registrations of an enrollment group",
                        ListRegistrations);
  list->add_option("--group-id", o.group_id, "Enrollment group ID")->required();
  list->add_option("--page-size", o.page_size, "Items per request (0: the server's default)")
      ->check(CLI::NonNegativeNumber);
  Leaf(registration, "delete", "Delete a registration state (the device may register again)",
       [](const Options& options) { return Delete("registrations", "registration", options); })
      ->add_option("id", o.id, "Registration ID")
      ->required();

  CLI::App* cert = app_.add_subcommand("cert", "Certificate inventory and revocation");
  cert->require_subcommand(1);
  CLI::App* cert_list =
      Leaf(cert, "list", "List issued and observed certificates, soonest expiring first",
           ListCertificates);
  cert_list->add_option("--expiring", o.expiring,
                        "Only unrevoked ones expiring within this time (30d, 12h, ...)");
  cert_list->add_option("--device", o.device_id, "Only this device's certificates");
  cert_list->add_flag("--revoked", o.revoked, "Only revoked certificates");
  cert_list->add_option("--page-size", o.page_size, "Items per request (0: the server's default)")
      ->check(CLI::NonNegativeNumber);
  Leaf(cert, "show", "Show one certificate with its PEM", ShowCertificate)
      ->add_option("id", o.id, "SHA-256 or SHA-1 thumbprint, or serial number (hex)")
      ->required();
  CLI::App* revoke = Leaf(cert, "revoke",
                          "Revoke by serial, thumbprint or device (all its certificates)",
                          RevokeCertificates);
  revoke->add_option("--serial", o.serial, "Serial number (hex)");
  revoke->add_option("--thumbprint", o.thumbprint, "SHA-256 or SHA-1 thumbprint (hex)");
  revoke->add_option("--device", o.device_id, "Every certificate of this device");
  revoke->add_option("--reason", o.reason,
                     "RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, ...")
      ->capture_default_str();

  CLI::App* command = app_.add_subcommand("command", "Server-signed commands for devices");
  command->require_subcommand(1);
  CLI::App* send =
      Leaf(command, "send", "Have the server sign a command for a registered device", SendCommand);
  send->add_option("id", o.id, "Registration ID of the device")->required();
  send->add_option("--json", o.command_json, "The command, a JSON object")->required();
  send->add_option("--ttl", o.command_ttl, "Seconds the command stays valid")
      ->check(CLI::Range(1, 24 * 3600))
      ->capture_default_str();
  send->add_option("--out", o.command_out, "Write the signed envelope (JWS) to this file");

  CLI::App* keys = app_.add_subcommand("keys", "Key utilities (offline)");
  keys->require_subcommand(1);
  CLI::App* derive = Leaf(keys, "derive", "Derive a device key from a group key (DPS)", DeriveKey,
                          /*needs_service=*/false);
  derive->add_option("--group-key", o.group_key, "Base64 group key")->required();
  derive->add_option("--registration-id", o.registration_id, "Registration ID")->required();
}

}  // namespace

void AddOperatorCommands(CLI::App& app, int& exit_code) { Commands(app, exit_code).Add(); }

}  // namespace devid::cli
