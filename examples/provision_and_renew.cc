// provision_and_renew: a device's life with the devid device SDK, using only include/devid/.
//
//   1. open its credential: a symmetric key, or an X.509 certificate with its key in a key store;
//   2. register with the provisioning service, which must prove itself with the trust bundle;
//   3. remember the assignment and notice when the service moved the device to another hub;
//   4. X.509: renew the certificate through EST when it is due (a new key, committed only once
//      the new certificate is proven);
//   5. obey a server-signed command only when the verifier accepts it.
//
// Run it against `devid serve` (examples/README.md):
//   provision_and_renew --connection connection.json --registration-id ID
//       (--symmetric-key-file FILE | --cert FILE --key URI)
//       [--state FILE] [--renew-at FRACTION] [--renew-now]
//       [--command FILE --command-state FILE [--signer FILE]]

#include <cctype>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "devid/command.h"
#include "devid/credential.h"
#include "devid/est_client.h"
#include "devid/provisioning_client.h"
#include "devid/provisioning_state.h"
#include "devid/renewal.h"

namespace {

// Flags holds --name value pairs; flags without a value ("--renew-now") map to "".
using Flags = std::map<std::string, std::string>;

std::optional<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0) return std::nullopt;
    bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
    flags[name.substr(2)] = has_value ? argv[++i] : "";
  }
  return flags;
}

std::string Flag(const Flags& flags, const std::string& name) {
  auto it = flags.find(name);
  return it == flags.end() ? "" : it->second;
}

std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Service is what connection.json tells a device: where to register and whom to trust.
struct Service {
  std::string host;
  uint16_t port = 443;
  std::string id_scope;
  std::string trust_bundle_pem;
  std::string command_signer_file;
};

std::optional<Service> ReadConnection(const std::string& path) {
  auto text = ReadText(path);
  if (!text) return std::nullopt;
  auto connection = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!connection.is_object()) return std::nullopt;
  Service service;
  // deviceEndpoint is https://HOST:PORT.
  std::string endpoint = connection.value("deviceEndpoint", "");
  if (endpoint.rfind("https://", 0) != 0) return std::nullopt;
  std::string authority = endpoint.substr(8);
  size_t colon = authority.rfind(':');
  service.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    service.port = static_cast<uint16_t>(std::stoi(authority.substr(colon + 1)));
  }
  service.id_scope = connection.value("idScope", "");
  auto bundle = ReadText(connection.value("trustBundle", ""));
  if (!bundle) return std::nullopt;
  service.trust_bundle_pem = *bundle;
  service.command_signer_file = connection.value("commandSigner", "");
  return service;
}

std::string Readable(std::chrono::system_clock::time_point t) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

int Fail(const std::string& doing, const devid::Error& error) {
  std::cerr << "Failed " << doing << ": " << error.message() << "\n";
  return 1;
}

// Register opens the credential the flags name and registers with it.
devid::Result<devid::sdk::Assignment> Register(const Flags& flags, const Service& service) {
  devid::sdk::ProvisioningClient client({.host = service.host,
                                         .port = service.port,
                                         .trust_bundle_pem = service.trust_bundle_pem,
                                         .id_scope = service.id_scope,
                                         .registration_id = Flag(flags, "registration-id")});
  if (flags.contains("cert")) {
    auto chain = ReadText(Flag(flags, "cert"));
    if (!chain)
      return std::unexpected(devid::InvalidArgument("cannot read " + Flag(flags, "cert")));
    // The key stays in its store (an encrypted file or a PKCS #11 token) and signs there.
    auto credential = devid::sdk::X509Credential::Open(*chain, Flag(flags, "key"));
    if (!credential) return std::unexpected(credential.error());
    std::cout << "Registering " << credential->common_name()
              << " with its X.509 certificate (mutual TLS)\n";
    return client.RegisterWithX509(*credential);
  }
  auto key_text = ReadText(Flag(flags, "symmetric-key-file"));
  if (!key_text) return std::unexpected(devid::InvalidArgument("cannot read the key file"));
  while (!key_text->empty() && std::isspace(static_cast<unsigned char>(key_text->back()))) {
    key_text->pop_back();
  }
  auto key = devid::sdk::SymmetricKeyCredential(*key_text);
  key_text->assign(key_text->size(), '\0');  // the credential holds its own copy now
  if (!key) return std::unexpected(key.error());
  std::cout << "Registering " << Flag(flags, "registration-id")
            << " with its symmetric key (SAS token)\n";
  return client.RegisterWithSymmetricKey(**key);
}

// RememberAssignment compares the assignment with the saved one and saves it.
devid::Status RememberAssignment(const std::string& state_file,
                                 const devid::sdk::Assignment& assignment) {
  auto previous = devid::sdk::LoadAssignment(state_file);
  if (!previous) return std::unexpected(previous.error());
  if (devid::sdk::HubMoved(*previous, assignment)) {
    std::cout << "The service moved this device from hub " << (*previous)->assigned_hub
              << " to hub " << assignment.assigned_hub << ": connect to the new hub\n";
  }
  std::cout << "Saved the assignment in " << state_file << "\n";
  return devid::sdk::SaveAssignment(state_file, assignment);
}

// RenewWhenDue renews the X.509 certificate through EST when it is due (or now, when forced).
devid::Status RenewWhenDue(const Flags& flags, const Service& service) {
  devid::sdk::EstClient est(
      {.host = service.host, .port = service.port, .trust_bundle_pem = service.trust_bundle_pem});
  std::unique_ptr<devid::sdk::Reenroller> reenroller = devid::sdk::EstReenroller(est);
  devid::SystemClock clock;
  devid::SecureRandom random;
  devid::sdk::RenewalPolicy policy;
  if (flags.contains("renew-at")) policy.renew_at_fraction = std::stod(Flag(flags, "renew-at"));
  devid::sdk::CertificateRenewer renewer(
      {.certificate_path = Flag(flags, "cert"), .key_uri = Flag(flags, "key")},
      service.trust_bundle_pem, policy, {}, *reenroller, clock, random);
  auto report = renewer.RenewIfDue(/*force=*/flags.contains("renew-now"));
  if (!report) {
    // The old certificate and key are untouched; a device tries again after next_attempt().
    std::cout << "Renewal failed; the current certificate stays in use. Next attempt after "
              << Readable(renewer.next_attempt()) << "\n";
    return std::unexpected(report.error());
  }
  if (report->renewed) {
    std::cout << "Renewed the certificate with a new key: serial " << report->serial
              << ", valid until " << Readable(report->not_after) << "\n";
  } else {
    std::cout << "The certificate (serial " << report->serial << ") is not due for renewal until "
              << Readable(report->due) << "\n";
  }
  return {};
}

// ObeyCommand runs the command file through the verifier and says what it decided.
devid::Status ObeyCommand(const Flags& flags, const Service& service,
                          const std::string& device_id) {
  std::string signer_file =
      flags.contains("signer") ? Flag(flags, "signer") : service.command_signer_file;
  auto signer = ReadText(signer_file);
  if (!signer) return std::unexpected(devid::InvalidArgument("cannot read " + signer_file));
  auto envelope = ReadText(Flag(flags, "command"));
  if (!envelope) {
    return std::unexpected(devid::InvalidArgument("cannot read " + Flag(flags, "command")));
  }
  devid::SystemClock clock;
  auto verifier = devid::sdk::CommandVerifier::Create({.device_id = device_id,
                                                       .signer_certificates_pem = *signer,
                                                       .state_file = Flag(flags, "command-state")},
                                                      clock);
  if (!verifier) return std::unexpected(verifier.error());
  auto command = (*verifier)->Accept(*envelope);
  if (!command) {
    std::cout << "Ignored the command (" << devid::sdk::CommandRefusalName(command.error().reason)
              << "): " << command.error().message << "\n";
    return {};
  }
  std::cout << "Accepted command " << command->sequence << ": " << command->command_json << "\n";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv);
  bool symmetric = flags && flags->contains("symmetric-key-file");
  bool x509 = flags && flags->contains("cert") && flags->contains("key");
  if (!flags || !flags->contains("connection") || symmetric == x509 ||
      (symmetric && !flags->contains("registration-id")) ||
      flags->contains("command") != flags->contains("command-state")) {
    std::cerr << "usage: provision_and_renew --connection connection.json\n"
                 "    (--symmetric-key-file FILE --registration-id ID | --cert FILE --key URI)\n"
                 "    [--state FILE] [--renew-at FRACTION] [--renew-now]\n"
                 "    [--command FILE --command-state FILE [--signer FILE]]\n";
    return 2;
  }
  auto service = ReadConnection(Flag(*flags, "connection"));
  if (!service) {
    std::cerr << "Cannot read " << Flag(*flags, "connection")
              << " (deviceEndpoint, idScope and a readable trustBundle)\n";
    return 1;
  }

  auto assignment = Register(*flags, *service);
  if (!assignment) return Fail("to register", assignment.error());
  std::cout << "Registered " << assignment->registration_id << ": hub " << assignment->assigned_hub
            << ", device ID " << assignment->device_id << " (" << assignment->substatus << ")\n";

  if (flags->contains("state")) {
    if (auto saved = RememberAssignment(Flag(*flags, "state"), *assignment); !saved) {
      return Fail("to save the assignment", saved.error());
    }
  }
  if (x509) {
    if (auto renewed = RenewWhenDue(*flags, *service); !renewed) {
      return Fail("to renew the certificate", renewed.error());
    }
  }
  if (flags->contains("command")) {
    if (auto obeyed = ObeyCommand(*flags, *service, assignment->registration_id); !obeyed) {
      return Fail("to check the command", obeyed.error());
    }
  }
  return 0;
}
