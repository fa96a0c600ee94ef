#include "server/serve.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/ca_certificate_api.h"
#include "api/certificate_api.h"
#include "api/command_api.h"
#include "api/device_api.h"
#include "api/est_api.h"
#include "api/router.h"
#include "api/service_api.h"
#include "api/service_auth.h"
#include "api/token_api.h"
#include "api/token_issuer.h"
#include "attestation/symmetric_key/symmetric_key_verifier.h"
#include "attestation/tpm/ek_certificate.h"
#include "attestation/x509/crl_cache.h"
#include "base/file.h"
#include "ca/inventory.h"
#include "ca/profile.h"
#include "net/http_get.h"
#include "net/https_server.h"
#include "ossl/base64.h"
#include "server/ca_store.h"
#include "server/command_signing.h"
#include "server/config.h"
#include "server/data_dir.h"
#include "server/revocation_service.h"
#include "server/server_tls.h"
#include "server/settings_refresh.h"

namespace devid::server {
namespace {

const registry::Actor kBootstrap{"devid serve"};

Result<std::unique_ptr<registry::Registry>> OpenStore(const Config& config, const DataDir& dir,
                                                      const RegistryFactories& factories,
                                                      Clock& clock, Random& random) {
  std::string url = config.store.url.empty() ? "sqlite://" + dir.DatabasePath() : config.store.url;
  auto store = OpenStoreUrl(url, factories, clock, random);
  if (!store) return std::unexpected(store.error().WithContext("config store.url"));
  return store;
}

// IdScope returns the configured scope, else the stored one, else a new one like DPS's
// ("0ne" and eight hex digits).
Result<std::string> IdScope(const Config& config, registry::Registry& registry, Random& random) {
  if (!config.device.id_scope.empty()) return config.device.id_scope;
  DEVID_ASSIGN_OR_RETURN(auto stored, registry.GetSetting(kIdScopeSetting));
  if (stored) return *stored;
  std::string scope = "0ne" + random.Hex(4);
  std::transform(scope.begin(), scope.end(), scope.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  scope[1] = 'n';
  scope[2] = 'e';
  // If-absent: nodes first-starting together on one store all end up with the first scope.
  return registry.SetSettingIfAbsent(kIdScopeSetting, scope, kBootstrap);
}

Result<std::vector<api::AccessPolicy>> Policies(registry::Registry& registry, Random& random) {
  DEVID_ASSIGN_OR_RETURN(auto stored, registry.GetSetting(kPoliciesSetting));
  if (stored) return api::PoliciesFromJson(*stored);
  std::vector<api::AccessPolicy> policies = {{"provisioningserviceowner",
                                              ossl::Base64Encode(random.Bytes(32)),
                                              ossl::Base64Encode(random.Bytes(32)),
                                              api::AllServiceRights()}};
  DEVID_ASSIGN_OR_RETURN(
      std::string stored_policies,
      registry.SetSettingIfAbsent(kPoliciesSetting, api::PoliciesToJson(policies), kBootstrap));
  return api::PoliciesFromJson(stored_policies);
}

std::optional<std::string> Getenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? std::optional<std::string>(value) : std::nullopt;
}

CaInitOptions CaInitOptionsFrom(const CaSection& ca) {
  CaInitOptions init;
  init.algorithm = keys::ParseKeyAlgorithm(ca.key_algorithm).value_or(keys::KeyAlgorithm::kEcdsaP256);
  init.root_key_uri = ca.root_key_uri;
  init.issuing_key_uri = ca.issuing_key_uri;
  init.passphrase_env = ca.passphrase_env;
  return init;
}

// StartCrlCache starts the third-party CRL cache for X.509 devices as [x509] says; what devid's
// own CAs issued is left to the inventory.
Result<std::unique_ptr<attestation::CrlCache>> StartCrlCache(const X509Section& x509,
                                                              const ca::Authority& authority,
                                                              const Clock& clock) {
  attestation::CrlCacheOptions options;
  options.files = x509.crl_files;
  options.fetch_distribution_points = x509.fetch_crls;
  DEVID_ASSIGN_OR_RETURN(options.unavailable,
                         attestation::ParseCrlUnavailablePolicy(x509.crl_unavailable));
  options.request_wait = std::chrono::milliseconds(x509.crl_request_wait_ms);
  options.refresh_before = std::chrono::seconds(x509.crl_refresh_before_seconds);
  options.max_age = std::chrono::seconds(x509.crl_max_age_seconds);
  options.retry_interval = std::chrono::seconds(x509.crl_retry_seconds);
  options.poll_interval = std::chrono::milliseconds(x509.crl_poll_ms);
  for (const pki::Certificate& root : authority.roots()) {
    options.own_issuer_thumbprints.insert(root.Sha256Thumbprint());
  }
  for (const ca::IssuingCa& issuer : authority.issuers()) {
    options.own_issuer_thumbprints.insert(issuer.certificate.Sha256Thumbprint());
  }
  net::HttpGetOptions get{.timeout = std::chrono::milliseconds(x509.crl_fetch_timeout_ms)};
  return attestation::CrlCache::Start(
      std::move(options), [get](const std::string& url) { return net::HttpGet(url, get); },
      clock);
}

// CaBaseUrl is where certificates point for CRLs, OCSP and the issuer: the configured URL, else
// the plain-HTTP revocation listener, else this server's own address. An ephemeral port (0) has
// no stable address, so no pointers then.
std::string CaBaseUrl(const Config& config, const ListenAddress& listen,
                      const std::optional<ListenAddress>& revocation_listen) {
  if (!config.ca.base_url.empty()) return config.ca.base_url;
  if (revocation_listen) {
    if (revocation_listen->port == 0) return "";
    return "http://" + config.server.host_name + ":" + std::to_string(revocation_listen->port);
  }
  if (listen.port == 0) return "";
  return "https://" + config.server.host_name + ":" + std::to_string(listen.port);
}

int Fail(const Error& error) {
  spdlog::critical("devid serve: {}", error.message());
  return 1;
}

}  // namespace

Result<std::unique_ptr<registry::Registry>> OpenStoreUrl(const std::string& url,
                                                         const RegistryFactories& factories,
                                                         Clock& clock, Random& random) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return std::unexpected(InvalidArgument("store URL \"" + url + "\" has no scheme"));
  }
  auto factory = factories.find(std::string_view(url).substr(0, sep));
  if (factory == factories.end()) {
    return std::unexpected(
        InvalidArgument("no store back end for scheme \"" + url.substr(0, sep) + "\""));
  }
  return factory->second(url.substr(sep + 3), clock, random);
}

int RunServe(const ServeOptions& options, const RegistryFactories& factories) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Least privilege on disk: the database and keys are the owner's alone; files meant to be
  // shared (the trust bundle) are widened explicitly.
  ::umask(077);

  Result<Config> config = options.config_file.empty() ? Config{}
                                                      : LoadConfigFile(options.config_file);
  if (!config) return Fail(config.error());
  if (!options.listen.empty()) config->server.listen = options.listen;
  auto listen = ParseListen(config->server.listen);
  if (!listen) return Fail(listen.error());
  if (!options.revocation_listen.empty()) {
    config->server.revocation_listen = options.revocation_listen;
  }
  std::optional<ListenAddress> revocation_listen;
  if (!config->server.revocation_listen.empty()) {
    auto parsed = ParseListen(config->server.revocation_listen);
    if (!parsed) return Fail(parsed.error().WithContext("--revocation-listen"));
    revocation_listen = *parsed;
  }

  SystemClock clock;
  SecureRandom random;
  auto dir = DataDir::Prepare(options.data_dir);
  if (!dir) return Fail(dir.error());
  auto registry = OpenStore(*config, *dir, factories, clock, random);
  if (!registry) return Fail(registry.error().WithContext("opening the store"));
  std::string base_url = CaBaseUrl(*config, *listen, revocation_listen);
  CaInitOptions init = CaInitOptionsFrom(config->ca);
  init.base_url = base_url;  // the issuing CA points at its root's CRL here too
  std::string ca_directory = config->ca.directory.empty()
                                 ? CaStore(dir->path()).directory()
                                 : CaStore::InDirectory(config->ca.directory).directory();
  auto ca = OpenServerAuthority(ca_directory, init, base_url, Getenv, clock, random);
  if (!ca) return Fail(ca.error());
  const ca::Authority& authority = *(*ca)->authority;
  auto tls = LoadOrIssueServerTls(*config, *dir, authority, clock);
  if (!tls) return Fail(tls.error());
  if (tls->issued) {
    auto recorded = (*registry)->RecordCertificate(
        ca::InventoryRecord(*tls->issued, registry::CertificateSource::kIssued, "",
                            std::string(ca::kServerProfile)),
        registry::kAuditCertificateIssue, kBootstrap);
    if (!recorded) return Fail(recorded.error().WithContext("recording the TLS certificate"));
  }
  auto id_scope = IdScope(*config, **registry, random);
  if (!id_scope) return Fail(id_scope.error());
  auto policies = Policies(**registry, random);
  if (!policies) return Fail(policies.error());
  if (policies->empty()) {
    return Fail(FailedPrecondition("the store's service.policies setting holds no policy"));
  }

  attestation::SymmetricKeyVerifier verifier(**registry, clock);
  api::DeviceApiOptions device_options{*id_scope, config->device.hubs,
                                       config->device.retry_after_seconds};
  device_options.authority = &authority;
  device_options.tpm_challenge_ttl = std::chrono::seconds(config->device.tpm_challenge_ttl_seconds);
  device_options.tpm_ek_certificates.required = config->device.tpm_require_ek_certificate;
  if (!config->device.tpm_ek_roots_file.empty()) {
    auto pem = ReadFile(config->device.tpm_ek_roots_file);
    if (!pem) return Fail(pem.error().WithContext("reading device.tpm_ek_roots_file"));
    auto roots = attestation::LoadEkManufacturerRoots(*pem);
    if (!roots) return Fail(roots.error().WithContext("loading device.tpm_ek_roots_file"));
    device_options.tpm_ek_certificates.roots =
        std::make_shared<const attestation::EkManufacturerRoots>(std::move(*roots));
  }
  auto crl_cache = StartCrlCache(config->x509, authority, clock);
  if (!crl_cache) return Fail(crl_cache.error().WithContext("config x509"));
  device_options.crl_cache = crl_cache->get();
  api::DeviceApi device_api(device_options, **registry, verifier, clock, random);
  api::ServiceAuthenticator service_auth(config->server.host_name, *policies, clock);
  api::ServiceApi service_api(**registry, service_auth, random);
  auto est = std::make_unique<api::EstApi>(authority, verifier, **registry, clock, *id_scope);
  api::CertificateApi certificate_api(**registry, service_auth, clock);
  api::CaCertificateApi ca_certificate_api(**registry, service_auth, clock, random);
  std::vector<api::Route*> routes = {est.get(), &certificate_api, &ca_certificate_api};
  auto revocation = StartRevocationService(ca_directory, **ca, **registry, clock, random);
  if (!revocation) return Fail(revocation.error().WithContext("starting CRL and OCSP"));
  routes.push_back((*revocation)->api.get());
  SignerFiles command_files{config->ca.command_signer_key_uri,
                            ca_directory,
                            dir->path() + "/command-signer.pem"};
  auto command_signer = LoadOrIssueSigner(command_files, authority, (*ca)->key_stores,
                                          **registry, clock, random);
  if (!command_signer) return Fail(command_signer.error().WithContext("config ca"));
  RenewingSigner renewing_command_signer(command_files, std::move(*command_signer), authority,
                                         (*ca)->key_stores, **registry, clock, random);
  api::CommandApi command_api(**registry, service_auth, renewing_command_signer.Source(), clock);
  routes.push_back(&command_api);
  SignerFiles token_files = TokenSignerFiles(config->ca.token_signer_key_uri, ca_directory,
                                             dir->path() + "/token-signer.pem");
  auto token_signer =
      LoadOrIssueSigner(token_files, authority, (*ca)->key_stores, **registry, clock, random);
  if (!token_signer) return Fail(token_signer.error().WithContext("config ca"));
  RenewingSigner renewing_token_signer(token_files, std::move(*token_signer), authority,
                                       (*ca)->key_stores, **registry, clock, random);
  api::TokenIssuer token_issuer(
      renewing_token_signer.Source(), clock, random,
      {.issuer = "https://" + config->server.host_name,
       .ttl = std::chrono::seconds(config->tokens.ttl_seconds)});
  api::TokenApi token_api(authority, **registry, clock, token_issuer, config->tokens.policy,
                          verifier, *id_scope, random);
  // Token requests are answered on the I/O threads when nothing in the answer waits on a
  // network or a device: an embedded store (which queues the audit record) and a key in memory.
  const std::string& token_key = config->ca.token_signer_key_uri;
  token_api.SetAnswerWithoutBlocking((*registry)->InProcess() &&
                                     (token_key.empty() || token_key.starts_with("file:")));
  routes.push_back(&token_api);
  api::Router router(device_api, service_api, random, routes);

  net::ServerOptions server_options;
  server_options.host = listen->host;
  server_options.port = listen->port;
  server_options.io_threads = config->server.io_threads;
  server_options.handler_threads = config->server.handler_threads;
  server_options.limits.body_limit = static_cast<size_t>(config->server.body_limit);
  server_options.limits.request_timeout = std::chrono::seconds(config->server.request_timeout_seconds);
  server_options.limits.idle_timeout = std::chrono::seconds(config->server.idle_timeout_seconds);
  // EST authenticates devices by their devid certificates (RFC 7030 §3.3.2); the TLS layer only
  // asks, so clients without one (SAS tokens, the service API) connect as before.
  server_options.request_client_certificate = config->server.request_client_certificate;
  auto server = net::HttpsServer::Start(server_options, tls->identity, router);
  if (!server) return Fail(server.error());
  // CRLs and OCSP over plain HTTP as well, where relying parties look for them: only the
  // revocation routes, with the main listener's limits (StartPlain asks for no certificates).
  api::Router revocation_router(random, {(*revocation)->api.get()});
  std::unique_ptr<net::HttpsServer> revocation_server;
  if (revocation_listen) {
    net::ServerOptions plain = server_options;
    plain.host = revocation_listen->host;
    plain.port = revocation_listen->port;
    auto started = net::HttpsServer::StartPlain(plain, revocation_router);
    if (!started) return Fail(started.error().WithContext("--revocation-listen"));
    revocation_server = std::move(*started);
  }

  std::string endpoint =
      "https://" + config->server.host_name + ":" + std::to_string((*server)->port());
  auto write_connection = [&](const std::string& scope, const api::AccessPolicy& owner) {
    nlohmann::json connection = {
        {"idScope", scope},
        {"deviceEndpoint", endpoint},
        {"serviceEndpoint", endpoint},
        {"serviceConnectionString", "HostName=" + config->server.host_name +
                                        ";SharedAccessKeyName=" + owner.name +
                                        ";SharedAccessKey=" + owner.primary_key},
        {"trustBundle", tls->trust_bundle_path},
        {"commandSigner", command_files.certificate_file},
        {"tokenSigner", token_files.certificate_file},
    };
    return dir->WriteConnectionFile(connection.dump(2) + "\n");
  };
  if (auto written = write_connection(*id_scope, policies->front()); !written) {
    return Fail(written.error());
  }
  // Settings changed through another node or in the store reach this one within the interval.
  SettingsRefresher refresher(
      **registry, {*id_scope, *policies}, config->device.id_scope.empty(),
      [&](const NodeSettings& settings) {
        device_api.SetIdScope(settings.id_scope);
        est->SetIdScope(settings.id_scope);
        token_api.SetIdScope(settings.id_scope);
        service_auth.SetPolicies(settings.policies);
        if (settings.policies.empty()) return;
        if (auto written = write_connection(settings.id_scope, settings.policies.front());
            !written) {
          spdlog::error("devid serve: {}", written.error().message());
        }
      });
  refresher.Start(std::chrono::seconds(config->store.settings_refresh_seconds));
  std::printf("devid serve: listening on https://%s:%u\n", listen->host.c_str(),
              static_cast<unsigned>((*server)->port()));
  if (revocation_server) {
    std::printf("devid serve: CRLs and OCSP on http://%s:%u\n", revocation_listen->host.c_str(),
                static_cast<unsigned>(revocation_server->port()));
  }
  std::printf("devid serve: ID scope %s; connection details in %s/connection.json\n",
              id_scope->c_str(), dir->path().c_str());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("devid serve: {} received; finishing in-flight requests",
               signal == SIGTERM ? "SIGTERM" : "SIGINT");
  if (revocation_server) {
    revocation_server->Shutdown(std::chrono::seconds(config->server.shutdown_grace_seconds));
  }
  (*server)->Shutdown(std::chrono::seconds(config->server.shutdown_grace_seconds));
  spdlog::info("devid serve: stopped");
  return 0;
}

}  // namespace devid::server
