#include "cli/device_renew_command.h"

#include <ctime>
#include <iostream>
#include <memory>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "cli/connection_string.h"
#include "cli/device_command_runner.h"
#include "cli/flag_file.h"
#include "devid/est_client.h"
#include "devid/renewal.h"
#include "pki/certificate.h"

namespace devid::cli {
namespace {

using std::chrono::system_clock;

struct RenewOptions {
  std::string certificate_file;
  std::string key_uri;
  std::string pkcs11_module;
  std::string endpoint;
  std::string server_name;
  std::string trust_bundle_file;
  bool force = false;
  bool same_key = false;
  double renew_at = sdk::RenewalPolicy{}.renew_at_fraction;
  int retries = 0;
  std::string output = "table";
};

// Readable renders t as "2026-11-26 14:38:58 UTC".
std::string Readable(system_clock::time_point t) {
  std::time_t seconds = system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

// InWords renders a duration by its two largest units: "12 days 4 hours", "3 minutes 5 seconds".
std::string InWords(system_clock::duration d) {
  int64_t total = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (total < 0) total = -total;
  struct Unit {
    const char* name;
    int64_t seconds;
  };
  constexpr Unit kUnits[] = {{"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1}};
  std::string words;
  int shown = 0;
  for (const Unit& unit : kUnits) {
    int64_t count = total / unit.seconds;
    total %= unit.seconds;
    if (count == 0 && shown == 0) continue;
    if (count != 0) {
      if (!words.empty()) words += " ";
      words += std::to_string(count) + " " + unit.name + (count == 1 ? "" : "s");
    }
    if (++shown == 2) break;
  }
  return words.empty() ? "0 seconds" : words;
}

// FromNow says when t is relative to now, in words.
std::string FromNow(system_clock::time_point t, system_clock::time_point now) {
  if (t <= now) return Readable(t) + " (now: " + InWords(now - t) + " ago)";
  return Readable(t) + " (in " + InWords(t - now) + ")";
}

Status Renew(const RenewOptions& options) {
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  DEVID_ASSIGN_OR_RETURN(std::string bundle,
                         ReadFlagFile(options.trust_bundle_file, "--trust-bundle"));
  sdk::EstClient est({.host = endpoint.host,
                      .port = endpoint.port,
                      .server_name = options.server_name,
                      .trust_bundle_pem = bundle});
  std::unique_ptr<sdk::Reenroller> reenroller = sdk::EstReenroller(est);
  SystemClock clock;
  SecureRandom random;
  sdk::CertificateRenewer renewer(
      {.certificate_path = options.certificate_file, .key_uri = options.key_uri}, bundle,
      {.renew_at_fraction = options.renew_at, .new_key = !options.same_key},
      {.pkcs11_module = options.pkcs11_module}, *reenroller, clock, random);
  for (int attempt = 0;; ++attempt) {
    auto report = renewer.RenewIfDue(options.force);
    if (!report) {
      // Errors before an attempt (unreadable files) set no retry time: nothing to retry.
      if (renewer.next_attempt() == system_clock::time_point{}) {
        return std::unexpected(report.error());
      }
      std::string unchanged =
          report.error().message() + ". The current certificate and key are unchanged and in use";
      if (attempt >= options.retries) {
        return std::unexpected(Error(report.error().code(), unchanged));
      }
      std::cerr << "devid: " << unchanged << "; trying again in "
                << InWords(renewer.next_attempt() - clock.Now()) << "\n";
      std::this_thread::sleep_until(renewer.next_attempt());
      continue;
    }
    system_clock::time_point now = clock.Now();
    if (options.output == "json") {
      PrintJson(std::cout, {{"renewed", report->renewed},
                            {"subject", report->subject},
                            {"serialNumber", report->serial},
                            {"key", report->key_uri},
                            {"notAfter", FormatUtc(report->not_after)},
                            {"renewalDue", FormatUtc(report->due)}});
      return Ok();
    }
    if (report->renewed) {
      std::cout << "Renewed: " << options.certificate_file << " now holds a new certificate"
                << (options.same_key ? " for the same key.\n" : " for a new key.\n");
    } else {
      std::cout << "Not renewed: the certificate is not due yet (--force renews it now).\n";
    }
    PrintFields(std::cout, {{"Subject", report->subject},
                            {"Serial", report->serial},
                            {"Key", report->key_uri},
                            {"Valid until", FromNow(report->not_after, now)},
                            {"Renewal due", FromNow(report->due, now)}});
    return Ok();
  }
}

}  // namespace

Status ShowDeviceCertificate(const std::string& certificate_file, double renew_at,
                             OutputFormat format) {
  DEVID_ASSIGN_OR_RETURN(std::string pem, ReadFlagFile(certificate_file, "--cert"));
  auto certificate = pki::Certificate::FromPem(pem);
  if (!certificate) {
    return std::unexpected(
        InvalidArgument("--cert: " + certificate_file + " holds no PEM certificate"));
  }
  system_clock::time_point now = SystemClock().Now();
  system_clock::time_point due = sdk::RenewalDueAt(*certificate, renew_at);
  if (format == OutputFormat::kJson) {
    PrintJson(std::cout, {{"registrationId", certificate->SubjectCommonName()},
                          {"subject", certificate->SubjectName()},
                          {"issuer", certificate->IssuerName()},
                          {"serialNumber", certificate->SerialHex()},
                          {"sha256Thumbprint", certificate->Sha256Thumbprint()},
                          {"notBefore", FormatUtc(certificate->NotBefore())},
                          {"notAfter", FormatUtc(certificate->NotAfter())},
                          {"renewalDue", FormatUtc(due)},
                          {"expired", certificate->NotAfter() <= now}});
    return Ok();
  }
  std::string expiry = FromNow(certificate->NotAfter(), now);
  if (certificate->NotAfter() <= now) expiry += ": EXPIRED, register the device again";
  PrintFields(std::cout, {{"Registration ID", certificate->SubjectCommonName()},
                          {"Subject", certificate->SubjectName()},
                          {"Issuer", certificate->IssuerName()},
                          {"Serial", certificate->SerialHex()},
                          {"SHA-256 thumbprint", certificate->Sha256Thumbprint()},
                          {"Valid from", Readable(certificate->NotBefore())},
                          {"Valid until", expiry},
                          {"Renewal due", FromNow(due, now)}});
  return Ok();
}

void AddDeviceRenewCommand(CLI::App& device, int& exit_code) {
  auto options = std::make_shared<RenewOptions>();
  CLI::App* renew = device.add_subcommand(
      "renew", "Renew this device's certificate through EST when it is due (new key by default)");
  renew
      ->add_option("--cert", options->certificate_file,
                   "PEM file with the device's certificate; replaced when renewed")
      ->required();
  renew
      ->add_option("--key", options->key_uri,
                   "The certificate's key: file:PATH?passphrase-env=NAME|passphrase-file=PATH "
                   "or pkcs11:token=LABEL;object=LABEL?pin-source=FILE")
      ->required();
  renew->add_option("--pkcs11-module", options->pkcs11_module,
                    "PKCS #11 library for a --key without module-path");
  renew->add_option("--endpoint", options->endpoint, "EST server, https://HOST[:PORT]")->required();
  renew
      ->add_option("--trust-bundle", options->trust_bundle_file,
                   "PEM roots the server's and the new certificate must chain to")
      ->required();
  renew->add_option("--server-name", options->server_name,
                    "Name the server certificate must carry (default: the endpoint's host)");
  renew->add_flag("--force", options->force, "Renew now, even when not due");
  renew->add_flag("--same-key", options->same_key,
                  "Keep the key instead of making a new one in the same file store or token");
  renew
      ->add_option("--renew-at", options->renew_at,
                   "Fraction of the certificate's lifetime after which it is due")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  renew
      ->add_option("--retries", options->retries,
                   "Try this many more times after a failure, waiting longer each time")
      ->check(CLI::Range(0, 20))
      ->capture_default_str();
  renew->add_option("-o,--output", options->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  renew->callback([options, &exit_code] { ReportStatus(Renew(*options), exit_code); });
}

}  // namespace devid::cli
