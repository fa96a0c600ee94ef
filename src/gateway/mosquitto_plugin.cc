// libdevid_mosquitto.so: the Mosquitto 2.0 plugin (API v5) that admits only provisioned devices
// and back ends holding a service key, confines each device to its own topics and each back end
// to devices' telemetry and cloud-to-device topics, and closes the sessions of devices disabled
// since. This file is only the C ABI: every entry point catches everything and fails closed
// (deny); the decisions are DeviceAuthenticator's, BackEndAuthenticator's, AuthThrottle's,
// SessionMonitor's, IsTopicAllowed's and IsBackEndTopicAllowed's.

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "gateway/auth_throttle.h"
#include "gateway/back_end_authenticator.h"
#include "gateway/device_authenticator.h"
#include "gateway/plugin_options.h"
#include "gateway/registry_cache.h"
#include "gateway/session_monitor.h"
#include "gateway/topic_policy.h"
#include "ossl/unique_ptr.h"
#include "pki/certificate.h"
#include "registry/postgres/postgres_registry.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::gateway {
namespace {

constexpr int kPluginApiVersion = 5;

// BrokerLogSink sends what the reused devid code logs through spdlog to the broker's log.
class BrokerLogSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    int level = MOSQ_LOG_DEBUG;
    if (msg.level >= spdlog::level::err) {
      level = MOSQ_LOG_ERR;
    } else if (msg.level == spdlog::level::warn) {
      level = MOSQ_LOG_WARNING;
    } else if (msg.level == spdlog::level::info) {
      level = MOSQ_LOG_INFO;
    }
    mosquitto_log_printf(level, "devid: %.*s", static_cast<int>(msg.payload.size()),
                         msg.payload.data());
  }
  void flush_() override {}
};

// Plugin is the state between mosquitto_plugin_init and mosquitto_plugin_cleanup. The broker calls
// the plugin from its one main thread.
struct Plugin {
  mosquitto_plugin_id_t* identifier = nullptr;
  SystemClock clock;
  SecureRandom random;  // the registry's writers would use it; the plugin only reads
  std::unique_ptr<registry::Registry> registry;
  std::unique_ptr<RegistryCache> cache;
  std::unique_ptr<DeviceAuthenticator> authenticator;
  std::unique_ptr<BackEndAuthenticator> back_ends;
  std::unique_ptr<SessionMonitor> sessions;
  std::unique_ptr<AuthThrottle> client_throttle;
  std::unique_ptr<AuthThrottle> address_throttle;
  TopicLayout topics;
  // loaded and ticked tell whether the broker delivers MOSQ_EVT_TICK: Mosquitto 2.0 does not with
  // per_listener_settings true, and then disabled devices would keep their sessions.
  std::chrono::steady_clock::time_point loaded = std::chrono::steady_clock::now();
  bool ticked = false;
};

// kTickGrace is how long after loading the plugin admits devices without having seen a tick (the
// broker's loop ticks every 100 ms at most once it runs).
constexpr std::chrono::seconds kTickGrace{5};

const char* OrEmpty(const char* s) { return s == nullptr ? "" : s; }

// ClientCertificate returns the certificate the client presented on an mTLS listener (the broker
// verified it against the listener's cafile), or nullopt.
std::optional<pki::Certificate> ClientCertificate(mosquitto* client) {
  // mosquitto_client_certificate returns an X509* (as void*) the caller must free.
  ossl::UniquePtr<X509> x509(static_cast<X509*>(mosquitto_client_certificate(client)));
  if (x509 == nullptr) return std::nullopt;
  return pki::Certificate::Adopt(std::move(x509));
}

// Authenticate admits a client whose username is `{hub}/$service` as a back end by its service
// SAS token; else by certificate a client that presented one and no password (IoT Hub X.509
// devices send none), else by its device SAS token.
Result<AdmittedDevice> Authenticate(Plugin& plugin, const char* client_id,
                                    const mosquitto_evt_basic_auth& ed) {
  if (ed.username != nullptr && IsBackEndUsername(ed.username)) {
    if (ed.password == nullptr) return std::unexpected(Unauthenticated("back end: no password"));
    return plugin.back_ends->Authenticate(client_id, ed.username, ed.password);
  }
  if (ed.password == nullptr) {
    if (std::optional<pki::Certificate> certificate = ClientCertificate(ed.client)) {
      return plugin.authenticator->AuthenticateX509(client_id, OrEmpty(ed.username), *certificate);
    }
  }
  if (ed.username == nullptr || ed.password == nullptr) {
    return std::unexpected(Unauthenticated("no username or password, and no client certificate"));
  }
  return plugin.authenticator->AuthenticateSas(client_id, ed.username, ed.password);
}

int OnBasicAuth(int /*event*/, void* event_data, void* userdata) {
  try {
    auto* plugin = static_cast<Plugin*>(userdata);
    auto* ed = static_cast<mosquitto_evt_basic_auth*>(event_data);
    const char* client_id = mosquitto_client_id(ed->client);
    const char* address = mosquitto_client_address(ed->client);
    if (plugin == nullptr || client_id == nullptr || address == nullptr) return MOSQ_ERR_AUTH;
    // Throttled keys are refused before their credentials are looked at, so guessing a key gets
    // slower with every failure and stops for a while after too many (docs/gateway.md).
    Status allowed = plugin->client_throttle->Check(client_id);
    if (allowed) allowed = plugin->address_throttle->Check(address);
    Result<AdmittedDevice> admitted = std::unexpected(Internal("not authenticated"));
    if (!plugin->ticked && std::chrono::steady_clock::now() - plugin->loaded > kTickGrace) {
      // Fail closed: without ticks a disabled device's session would never be closed.
      admitted = std::unexpected(
          FailedPrecondition("the broker delivers no tick events, so live sessions could not be "
                             "re-checked: set per_listener_settings false"));
    } else if (!allowed) {
      admitted = std::unexpected(allowed.error());
    } else {
      admitted = Authenticate(*plugin, client_id, *ed);
    }
    if (!admitted) {
      plugin->client_throttle->RecordFailure(client_id);
      plugin->address_throttle->RecordFailure(address);
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "devid: refused client \"%s\" from %s: %s", client_id,
                           address, admitted.error().message().c_str());
      return MOSQ_ERR_AUTH;
    }
    plugin->client_throttle->RecordSuccess(client_id);
    plugin->sessions->Add(ed->client, std::move(*admitted));
    return MOSQ_ERR_SUCCESS;
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: authentication failed closed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: authentication failed closed");
  }
  return MOSQ_ERR_AUTH;
}

int OnDisconnect(int /*event*/, void* event_data, void* userdata) {
  try {
    auto* plugin = static_cast<Plugin*>(userdata);
    auto* ed = static_cast<mosquitto_evt_disconnect*>(event_data);
    if (plugin != nullptr) plugin->sessions->Remove(ed->client);
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: forgetting a session failed");
  }
  return MOSQ_ERR_SUCCESS;
}

// OnTick runs on every turn of the broker's loop (at least every 100 ms); SessionMonitor decides
// when a sweep is due and bounds its work.
int OnTick(int /*event*/, void* /*event_data*/, void* userdata) {
  try {
    auto* plugin = static_cast<Plugin*>(userdata);
    if (plugin == nullptr) return MOSQ_ERR_SUCCESS;
    plugin->ticked = true;
    for (const Expired& expired : plugin->sessions->Sweep()) {
      mosquitto_log_printf(
          expired.reason.code() == ErrorCode::kUnauthenticated ? MOSQ_LOG_NOTICE : MOSQ_LOG_ERR,
          "devid: closing the session of client \"%s\": %s", expired.client_id.c_str(),
          expired.reason.message().c_str());
      // Never with a null id, which names every client; device IDs are never empty, but check.
      if (!expired.client_id.empty()) {
        mosquitto_kick_client_by_clientid(expired.client_id.c_str(), false);
      }
    }
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: re-checking sessions failed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: re-checking sessions failed");
  }
  return MOSQ_ERR_SUCCESS;
}

int OnAclCheck(int /*event*/, void* event_data, void* userdata) {
  try {
    auto* plugin = static_cast<Plugin*>(userdata);
    auto* ed = static_cast<mosquitto_evt_acl_check*>(event_data);
    const char* client_id = mosquitto_client_id(ed->client);
    const char* username = mosquitto_client_username(ed->client);
    if (plugin == nullptr || client_id == nullptr || username == nullptr || ed->topic == nullptr) {
      return MOSQ_ERR_ACL_DENIED;
    }
    TopicAccess access;
    switch (ed->access) {
      case MOSQ_ACL_WRITE:
        access = TopicAccess::kPublish;
        break;
      case MOSQ_ACL_READ:
        access = TopicAccess::kReceive;
        break;
      case MOSQ_ACL_SUBSCRIBE:
        access = TopicAccess::kSubscribe;
        break;
      case MOSQ_ACL_UNSUBSCRIBE:
        access = TopicAccess::kUnsubscribe;
        break;
      default:
        return MOSQ_ERR_ACL_DENIED;
    }
    // A back end is a session OnBasicAuth admitted with a service token; its username says so too.
    const AdmittedDevice* admitted = plugin->sessions->Find(ed->client);
    if (admitted != nullptr && !admitted->back_end_policy.empty()) {
      if (IsBackEndUsername(username) && IsBackEndTopicAllowed(plugin->topics, access, ed->topic)) {
        return MOSQ_ERR_SUCCESS;
      }
    } else if (DeviceIdFromUsername(username) == std::string_view(client_id)) {
      // Only devices OnBasicAuth admitted have a username naming their own client id.
      if (IsTopicAllowed(plugin->topics, client_id, access, ed->topic)) return MOSQ_ERR_SUCCESS;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "devid: denied client \"%s\" access %d to \"%s\"",
                         client_id, ed->access, ed->topic);
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: access check failed closed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: access check failed closed");
  }
  return MOSQ_ERR_ACL_DENIED;
}

void Unregister(const Plugin& plugin) {
  mosquitto_callback_unregister(plugin.identifier, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr);
  mosquitto_callback_unregister(plugin.identifier, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr);
  mosquitto_callback_unregister(plugin.identifier, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr);
  mosquitto_callback_unregister(plugin.identifier, MOSQ_EVT_TICK, OnTick, nullptr);
}

// OpenStore opens the store read-only where the back end allows it. The broker calls the plugin
// from one thread, so one reader or connection is enough.
Result<std::unique_ptr<registry::Registry>> OpenStore(const std::string& url, Plugin& plugin) {
  if (IsSqliteStore(url)) {
    registry::SqliteRegistryOptions options;
    options.read_only = true;
    options.max_readers = 1;
    DEVID_ASSIGN_OR_RETURN(auto sqlite, registry::SqliteRegistry::Open(
                                            SqlitePath(url), plugin.clock, plugin.random, options));
    return std::unique_ptr<registry::Registry>(std::move(sqlite));
  }
  registry::PostgresRegistryOptions options;
  options.max_connections = 1;
  options.connection_wait = std::chrono::milliseconds(2000);
  DEVID_ASSIGN_OR_RETURN(
      auto postgres, registry::PostgresRegistry::Open(url, plugin.clock, plugin.random, options));
  return std::unique_ptr<registry::Registry>(std::move(postgres));
}

int Init(mosquitto_plugin_id_t* identifier, void** userdata, mosquitto_opt* options,
         int option_count) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < option_count; ++i) {
    pairs.emplace_back(OrEmpty(options[i].key), OrEmpty(options[i].value));
  }
  auto parsed = ParsePluginOptions(pairs);
  if (!parsed) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: %s", parsed.error().message().c_str());
    return MOSQ_ERR_INVAL;
  }
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("devid", std::make_shared<BrokerLogSink>()));
  auto plugin = std::make_unique<Plugin>();
  plugin->identifier = identifier;
  plugin->topics = parsed->topics;
  auto opened = OpenStore(parsed->store_url, *plugin);
  if (!opened) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: opening the registry: %s",
                         opened.error().message().c_str());
    return MOSQ_ERR_UNKNOWN;
  }
  plugin->registry = std::move(*opened);
  plugin->cache = std::make_unique<RegistryCache>(*plugin->registry, plugin->clock, parsed->cache);
  plugin->authenticator =
      std::make_unique<DeviceAuthenticator>(*plugin->cache, plugin->clock, parsed->hub);
  plugin->back_ends =
      std::make_unique<BackEndAuthenticator>(*plugin->registry, plugin->clock, parsed->hub);
  plugin->sessions = std::make_unique<SessionMonitor>(
      plugin->clock, parsed->sessions,
      [authenticator = plugin->authenticator.get(),
       back_ends = plugin->back_ends.get()](const AdmittedDevice& admitted) {
        return admitted.back_end_policy.empty() ? authenticator->Recheck(admitted)
                                                : back_ends->Recheck(admitted);
      });
  plugin->client_throttle = std::make_unique<AuthThrottle>(plugin->clock, parsed->client_throttle);
  plugin->address_throttle =
      std::make_unique<AuthThrottle>(plugin->clock, parsed->address_throttle);
  if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_TICK, OnTick, nullptr, plugin.get()) !=
          MOSQ_ERR_SUCCESS) {
    Unregister(*plugin);
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: registering the plugin's callbacks failed");
    return MOSQ_ERR_UNKNOWN;
  }
  // The URL is not logged: a postgresql:// URL may carry a password.
  mosquitto_log_printf(MOSQ_LOG_INFO,
                       "devid: admitting devices from the %s store%s%s; cache %zu entries for "
                       "%lld ms; sessions re-checked every %lld ms, %zu at a time",
                       IsSqliteStore(parsed->store_url) ? "SQLite" : "PostgreSQL",
                       parsed->hub.empty() ? "" : " for hub ", parsed->hub.c_str(),
                       parsed->cache.max_entries, static_cast<long long>(parsed->cache.ttl.count()),
                       static_cast<long long>(parsed->sessions.interval.count()),
                       parsed->sessions.batch);
  *userdata = plugin.release();  // The broker keeps it until mosquitto_plugin_cleanup.
  return MOSQ_ERR_SUCCESS;
}

}  // namespace
}  // namespace devid::gateway

// The library is built with hidden visibility; these three are what the broker looks up.
#define DEVID_PLUGIN_EXPORT __attribute__((visibility("default")))

extern "C" {

DEVID_PLUGIN_EXPORT int mosquitto_plugin_version(int supported_version_count,
                                                 const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == devid::gateway::kPluginApiVersion) {
      return devid::gateway::kPluginApiVersion;
    }
  }
  return -1;
}

DEVID_PLUGIN_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                                              struct mosquitto_opt* options, int option_count) {
  try {
    return devid::gateway::Init(identifier, userdata, options, option_count);
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: loading the plugin failed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: loading the plugin failed");
  }
  return MOSQ_ERR_UNKNOWN;
}

DEVID_PLUGIN_EXPORT int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt* /*options*/,
                                                 int /*option_count*/) {
  try {
    std::unique_ptr<devid::gateway::Plugin> plugin(static_cast<devid::gateway::Plugin*>(userdata));
    if (plugin != nullptr) devid::gateway::Unregister(*plugin);
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: unloading the plugin failed");
  }
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
