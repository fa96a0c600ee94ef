#include "cli/peer_session_commands.h"

#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/file.h"
#include "cli/connection_string.h"
#include "cli/device_command_runner.h"
#include "cli/duration.h"
#include "cli/flag_file.h"
#include "devid/device_key.h"
#include "devid/peer_session.h"
#include "devid/peer_trust.h"

namespace devid::cli {
namespace {

struct SessionOptions {
  std::string address;  // HOST:PORT to listen on or connect to
  std::string certificate_file;
  std::string key_uri;
  std::string pkcs11_module;
  std::string trust_dir;
  std::string expect;
  int64_t max_crl_age_seconds = 24 * 3600;
  int count = 0;  // serve: connections to take before exiting; 0 = no end
};

struct RefreshOptions {
  std::string trust_dir;
  std::string endpoint;
  std::string trust_bundle_file;
};

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = colon == std::string::npos ? -1 : std::atoi(address.c_str() + colon + 1);
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return std::unexpected(InvalidArgument("\"" + address + "\" is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::pair{host, static_cast<uint16_t>(port)};
}

// Session is what serve and connect share: this device's identity and its cached trust.
struct Session {
  SystemClock clock;
  std::optional<sdk::PeerTrust> trust;
  sdk::PeerSessionOptions options;
};

Status OpenSession(const SessionOptions& options, Session& session) {
  // OpenSSL writes with write(2): a peer that hangs up must fail the write, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto trust =
      sdk::PeerTrust::Open({.directory = options.trust_dir,
                            .max_crl_age = std::chrono::seconds(options.max_crl_age_seconds)},
                           session.clock);
  if (!trust) return std::unexpected(trust.error().WithContext("--trust-dir"));
  session.trust.emplace(std::move(*trust));
  DEVID_ASSIGN_OR_RETURN(std::string chain, ReadFlagFile(options.certificate_file, "--cert"));
  auto key = sdk::OpenDeviceKey(options.key_uri, {.pkcs11_module = options.pkcs11_module});
  if (!key) return std::unexpected(key.error().WithContext("--key"));
  session.options = {.certificate_chain_pem = chain,
                     .key = *key,
                     .trust = &*session.trust,
                     .expected_peer = options.expect};
  return Ok();
}

// ReportAccepted says which peer the mutual TLS handshake authenticated.
void ReportAccepted(const sdk::VerifiedPeer& peer) {
  std::cout << "accepted " << peer.name << " (serial " << peer.serial << ")" << std::endl;
}

Status Serve(const SessionOptions& options) {
  DEVID_ASSIGN_OR_RETURN(auto address, SplitHostPort(options.address));
  Session session;
  DEVID_TRY(OpenSession(options, session));
  DEVID_ASSIGN_OR_RETURN(sdk::PeerListener listener,
                         sdk::PeerListener::Listen(address.first, address.second, session.options));
  std::cout << "listening on " << address.first << ":" << listener.port() << std::endl;
  bool all_accepted = true;
  for (int served = 0; options.count == 0 || served < options.count; ++served) {
    auto connection = listener.Accept();
    if (!connection) {
      all_accepted = false;
      std::cout << "refused: " << connection.error().message() << std::endl;
      continue;
    }
    const sdk::VerifiedPeer& peer = connection->peer();
    ReportAccepted(peer);
    // The serving peer speaks first: in TLS 1.3 a client learns that it was refused only by
    // reading (the alert follows the handshake).
    auto hello = connection->WriteLine("welcome " + peer.name);
    auto answer =
        hello ? connection->ReadLine() : Result<std::string>(std::unexpected(hello.error()));
    if (!answer) {
      std::cout << "  " << answer.error().message() << std::endl;
      continue;
    }
    std::cout << "  " << peer.name << " says: " << *answer << std::endl;
  }
  if (!all_accepted) return std::unexpected(Unauthenticated("at least one peer was refused"));
  return Ok();
}

Status Connect(const SessionOptions& options) {
  DEVID_ASSIGN_OR_RETURN(auto address, SplitHostPort(options.address));
  Session session;
  DEVID_TRY(OpenSession(options, session));
  DEVID_ASSIGN_OR_RETURN(sdk::PeerConnection connection,
                         sdk::ConnectToPeer(address.first, address.second, session.options));
  const sdk::VerifiedPeer& peer = connection.peer();
  ReportAccepted(peer);
  DEVID_ASSIGN_OR_RETURN(std::string answer, connection.ReadLine());
  std::cout << peer.name << " says: " << answer << std::endl;
  DEVID_TRY(connection.WriteLine("hello"));
  return Ok();
}

Status Refresh(const RefreshOptions& options) {
  DEVID_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  DEVID_ASSIGN_OR_RETURN(std::string bundle,
                         ReadFlagFile(options.trust_bundle_file, "--trust-bundle"));
  SystemClock clock;
  DEVID_ASSIGN_OR_RETURN(sdk::PeerTrust trust,
                         sdk::PeerTrust::Open({.directory = options.trust_dir}, clock));
  DEVID_TRY(
      trust.Refresh({.host = endpoint.host, .port = endpoint.port, .trust_bundle_pem = bundle}));
  std::cout << "cached " << trust.ca_count() << " CA certificates and " << trust.crl_count()
            << " CRLs in " << trust.cache_file() << "\n";
  return Ok();
}

void AddIdentityOptions(CLI::App& command, SessionOptions& options) {
  command.add_option("--cert", options.certificate_file, "This device's devid certificate")
      ->required();
  command
      .add_option("--key", options.key_uri,
                  "URI of its key (file:, pkcs11: or tpm2:), which signs the TLS handshake")
      ->required();
  command.add_option("--pkcs11-module", options.pkcs11_module,
                     "PKCS #11 library for URIs without module-path");
  command
      .add_option("--trust-dir", options.trust_dir,
                  "Directory of the cached CA certificates and CRLs (devid peer refresh)")
      ->required();
  command.add_option("--expect", options.expect, "Accept only the peer with this device ID (CN)");
  command
      .add_option("--max-crl-age", options.max_crl_age_seconds,
                  "Refuse peers when the last refresh is older than this (30s, 90m, 24h, 7d)")
      ->transform(CLI::Validator(
          [](std::string& text) {
            // The same parser as every other duration flag, so the accepted forms match.
            Result<int64_t> seconds = ParseDuration(text);
            if (!seconds) return seconds.error().message();
            text = std::to_string(*seconds);
            return std::string();
          },
          "DURATION"))
      ->default_str("24h");
}

}  // namespace

void AddPeerSessionCommands(CLI::App& peer, int& exit_code) {
  auto refresh_options = std::make_shared<RefreshOptions>();
  CLI::App* refresh = peer.add_subcommand(
      "refresh", "Fetch devid's CA certificates and CRLs for authenticating peers offline");
  refresh->add_option("--trust-dir", refresh_options->trust_dir, "Where to cache them")->required();
  refresh->add_option("--endpoint", refresh_options->endpoint, "devid's https:// device endpoint")
      ->required();
  refresh
      ->add_option("--trust-bundle", refresh_options->trust_bundle_file,
                   "PEM of the CA certificates devid's server certificate chains to")
      ->required();
  refresh->callback(
      [refresh_options, &exit_code] { ReportStatus(Refresh(*refresh_options), exit_code); });

  auto serve_options = std::make_shared<SessionOptions>();
  serve_options->address = "127.0.0.1:0";
  CLI::App* serve = peer.add_subcommand(
      "serve", "Accept peers over mutual TLS, checked offline against the cached trust");
  serve->add_option("--listen", serve_options->address, "HOST:PORT (port 0 picks one)")
      ->capture_default_str();
  serve->add_option("--count", serve_options->count, "Exit after this many connections (0: never)")
      ->capture_default_str();
  AddIdentityOptions(*serve, *serve_options);
  serve->callback([serve_options, &exit_code] { ReportStatus(Serve(*serve_options), exit_code); });

  auto connect_options = std::make_shared<SessionOptions>();
  CLI::App* connect = peer.add_subcommand(
      "connect", "Connect to a serving peer over mutual TLS, checked offline against the cache");
  connect->add_option("address", connect_options->address, "The peer's HOST:PORT")->required();
  AddIdentityOptions(*connect, *connect_options);
  connect->callback(
      [connect_options, &exit_code] { ReportStatus(Connect(*connect_options), exit_code); });
}

}  // namespace devid::cli
