// libdevid_mosquitto.so: the Mosquitto 2.0 plugin (API v5) that admits only provisioned devices
// and confines each to its own topics. This file is only the C ABI: every entry point catches
// everything and fails closed (deny); the decisions are DeviceAuthenticator's and
// IsTopicAllowed's.

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/random.h"
#include "gateway/device_authenticator.h"
#include "gateway/plugin_options.h"
#include "gateway/topic_policy.h"
#include "registry/sqlite/sqlite_registry.h"

namespace devid::gateway {
namespace {

constexpr int kPluginApiVersion = 5;

// Plugin is the state between mosquitto_plugin_init and mosquitto_plugin_cleanup. The broker calls
// the plugin from its one main thread.
struct Plugin {
  mosquitto_plugin_id_t* identifier = nullptr;
  SystemClock clock;
  SecureRandom random;  // the registry's writer would use it; read-only, it is never called
  std::unique_ptr<registry::SqliteRegistry> registry;
  std::unique_ptr<DeviceAuthenticator> authenticator;
};

const char* OrEmpty(const char* s) { return s == nullptr ? "" : s; }

int OnBasicAuth(int /*event*/, void* event_data, void* userdata) {
  try {
    auto* plugin = static_cast<Plugin*>(userdata);
    auto* ed = static_cast<mosquitto_evt_basic_auth*>(event_data);
    const char* client_id = mosquitto_client_id(ed->client);
    if (plugin == nullptr || client_id == nullptr || ed->username == nullptr ||
        ed->password == nullptr) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "devid: refused client \"%s\": no username or password",
                           OrEmpty(client_id));
      return MOSQ_ERR_AUTH;
    }
    auto admitted = plugin->authenticator->AuthenticateSas(client_id, ed->username, ed->password);
    if (!admitted) {
      mosquitto_log_printf(MOSQ_LOG_NOTICE, "devid: refused client \"%s\": %s", client_id,
                           admitted.error().message().c_str());
      return MOSQ_ERR_AUTH;
    }
    return MOSQ_ERR_SUCCESS;
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: authentication failed closed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: authentication failed closed");
  }
  return MOSQ_ERR_AUTH;
}

int OnAclCheck(int /*event*/, void* event_data, void* /*userdata*/) {
  try {
    auto* ed = static_cast<mosquitto_evt_acl_check*>(event_data);
    const char* client_id = mosquitto_client_id(ed->client);
    const char* username = mosquitto_client_username(ed->client);
    if (client_id == nullptr || username == nullptr || ed->topic == nullptr) {
      return MOSQ_ERR_ACL_DENIED;
    }
    // Only clients OnBasicAuth admitted have a username naming their own client id.
    std::string_view device_id = client_id;
    if (DeviceIdFromUsername(username) != device_id) return MOSQ_ERR_ACL_DENIED;
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
    if (IsTopicAllowed(device_id, access, ed->topic)) return MOSQ_ERR_SUCCESS;
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
  auto plugin = std::make_unique<Plugin>();
  plugin->identifier = identifier;
  registry::SqliteRegistryOptions store_options;
  store_options.read_only = true;
  store_options.max_readers = 1;  // the broker calls from one thread
  auto opened = registry::SqliteRegistry::Open(parsed->store_path, plugin->clock, plugin->random,
                                               store_options);
  if (!opened) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: opening the registry read-only: %s",
                         opened.error().message().c_str());
    return MOSQ_ERR_UNKNOWN;
  }
  plugin->registry = std::move(*opened);
  plugin->authenticator =
      std::make_unique<DeviceAuthenticator>(*plugin->registry, plugin->clock, parsed->hub);
  if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS ||
      mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr,
                                  plugin.get()) != MOSQ_ERR_SUCCESS) {
    Unregister(*plugin);
    mosquitto_log_printf(MOSQ_LOG_ERR, "devid: registering the plugin's callbacks failed");
    return MOSQ_ERR_UNKNOWN;
  }
  mosquitto_log_printf(MOSQ_LOG_INFO, "devid: admitting devices from %s%s%s",
                       parsed->store_path.c_str(), parsed->hub.empty() ? "" : " for hub ",
                       parsed->hub.c_str());
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
