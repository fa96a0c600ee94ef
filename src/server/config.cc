#include "server/config.h"

#include <charconv>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "base/file.h"
#include "keys/key_store.h"

namespace devid::server {
namespace {

Error KeyError(std::string_view key, std::string_view problem) {
  return InvalidArgument("config " + std::string(key) + ": " + std::string(problem));
}

Status CheckKeys(const toml::table& table, std::string_view section,
                 const std::set<std::string>& known) {
  for (const auto& [key, value] : table) {
    if (!known.contains(std::string(key.str()))) {
      return std::unexpected(KeyError(std::string(section) + "." + std::string(key.str()),
                                      "unknown setting"));
    }
  }
  return Ok();
}

Status ReadString(const toml::table& t, std::string_view section, const char* key,
                  std::string& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return Ok();
  if (!node->is_string()) {
    return std::unexpected(KeyError(std::string(section) + "." + key, "must be a string"));
  }
  out = node->value<std::string>().value();
  return Ok();
}

Status ReadBool(const toml::table& t, std::string_view section, const char* key, bool& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return Ok();
  if (!node->is_boolean()) {
    return std::unexpected(KeyError(std::string(section) + "." + key, "must be true or false"));
  }
  out = node->value<bool>().value();
  return Ok();
}

template <typename Int>
Status ReadInt(const toml::table& t, std::string_view section, const char* key, Int& out,
               int64_t min, int64_t max) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return Ok();
  auto value = node->value<int64_t>();
  if (!node->is_integer() || !value || *value < min || *value > max) {
    return std::unexpected(KeyError(std::string(section) + "." + key,
                                    "must be an integer from " + std::to_string(min) + " to " +
                                        std::to_string(max)));
  }
  out = static_cast<Int>(*value);
  return Ok();
}

Status ReadStrings(const toml::table& t, std::string_view section, const char* key,
                   std::vector<std::string>& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return Ok();
  const toml::array* array = node->as_array();
  std::string name = std::string(section) + "." + key;
  if (array == nullptr) return std::unexpected(KeyError(name, "must be an array of strings"));
  out.clear();
  for (const toml::node& item : *array) {
    if (!item.is_string()) return std::unexpected(KeyError(name, "must be an array of strings"));
    out.push_back(item.value<std::string>().value());
  }
  return Ok();
}

Result<const toml::table*> Section(const toml::table& root, const char* name) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) return std::unexpected(KeyError(name, "must be a table"));
  return node->as_table();
}

Status ParseTokens(const toml::table& tokens, TokensSection& out) {
  DEVID_TRY(CheckKeys(tokens, "tokens", {"ttl_seconds", "services", "rule"}));
  DEVID_TRY(ReadInt(tokens, "tokens", "ttl_seconds", out.ttl_seconds, 1, 3600));
  DEVID_TRY(ReadStrings(tokens, "tokens", "services", out.policy.services));
  if (const toml::node* rules = tokens.get("rule")) {
    const toml::array* array = rules->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      return std::unexpected(KeyError("tokens.rule", "must be [[tokens.rule]] tables"));
    }
    for (const toml::node& node : *array) {
      const toml::table& t = *node.as_table();
      std::string name = "tokens.rule[" + std::to_string(out.policy.rules.size()) + "]";
      DEVID_TRY(CheckKeys(t, name,
                          {"from_devices", "from_groups", "to_devices", "to_groups",
                           "to_services", "scopes"}));
      ca::TokenRule& rule = out.policy.rules.emplace_back();
      DEVID_TRY(ReadStrings(t, name, "from_devices", rule.from_devices));
      DEVID_TRY(ReadStrings(t, name, "from_groups", rule.from_groups));
      DEVID_TRY(ReadStrings(t, name, "to_devices", rule.to_devices));
      DEVID_TRY(ReadStrings(t, name, "to_groups", rule.to_groups));
      DEVID_TRY(ReadStrings(t, name, "to_services", rule.to_services));
      DEVID_TRY(ReadStrings(t, name, "scopes", rule.scopes));
    }
  }
  if (auto valid = ca::ValidateTokenPolicy(out.policy); !valid) {
    return std::unexpected(valid.error().WithContext("config"));
  }
  return Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view toml_text) {
  toml::table root;
  try {
    // toml++ is built with exceptions: a syntax error throws.
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return std::unexpected(
        InvalidArgument("config: " + std::string(e.description()) + " at " + where.str()));
  }
  DEVID_TRY(CheckKeys(root, "", {"server", "device", "store", "tls", "ca", "x509", "tokens"}));
  Config config;
  DEVID_ASSIGN_OR_RETURN(const toml::table* server, Section(root, "server"));
  if (server) {
    DEVID_TRY(
        CheckKeys(*server, "server",
                  {"listen", "host_name", "io_threads", "handler_threads", "body_limit",
                   "request_timeout_seconds", "idle_timeout_seconds", "shutdown_grace_seconds",
                   "request_client_certificate", "revocation_listen"}));
    auto& s = config.server;
    DEVID_TRY(ReadString(*server, "server", "listen", s.listen));
    if (auto listen = ParseListen(s.listen); !listen) {
      return std::unexpected(listen.error().WithContext("config server.listen"));
    }
    DEVID_TRY(ReadString(*server, "server", "revocation_listen", s.revocation_listen));
    if (!s.revocation_listen.empty()) {
      if (auto listen = ParseListen(s.revocation_listen); !listen) {
        return std::unexpected(listen.error().WithContext("config server.revocation_listen"));
      }
    }
    DEVID_TRY(ReadString(*server, "server", "host_name", s.host_name));
    DEVID_TRY(ReadInt(*server, "server", "io_threads", s.io_threads, 0, 256));
    DEVID_TRY(ReadInt(*server, "server", "handler_threads", s.handler_threads, 1, 1024));
    DEVID_TRY(ReadInt(*server, "server", "body_limit", s.body_limit, 1024, 64 << 20));
    DEVID_TRY(ReadInt(*server, "server", "request_timeout_seconds", s.request_timeout_seconds, 1,
                      3600));
    DEVID_TRY(ReadInt(*server, "server", "idle_timeout_seconds", s.idle_timeout_seconds, 1, 86400));
    DEVID_TRY(ReadInt(*server, "server", "shutdown_grace_seconds", s.shutdown_grace_seconds, 0,
                      3600));
    DEVID_TRY(ReadBool(*server, "server", "request_client_certificate",
                       s.request_client_certificate));
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* device, Section(root, "device"));
  if (device) {
    DEVID_TRY(CheckKeys(*device, "device",
                        {"id_scope", "hubs", "retry_after_seconds", "tpm_challenge_ttl_seconds",
                         "tpm_require_ek_certificate", "tpm_ek_roots_file"}));
    DEVID_TRY(ReadString(*device, "device", "id_scope", config.device.id_scope));
    DEVID_TRY(ReadStrings(*device, "device", "hubs", config.device.hubs));
    DEVID_TRY(ReadInt(*device, "device", "retry_after_seconds", config.device.retry_after_seconds,
                      0, 60));
    DEVID_TRY(ReadInt(*device, "device", "tpm_challenge_ttl_seconds",
                      config.device.tpm_challenge_ttl_seconds, 1, 3600));
    DEVID_TRY(ReadBool(*device, "device", "tpm_require_ek_certificate",
                       config.device.tpm_require_ek_certificate));
    DEVID_TRY(ReadString(*device, "device", "tpm_ek_roots_file", config.device.tpm_ek_roots_file));
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* store, Section(root, "store"));
  if (store) {
    DEVID_TRY(CheckKeys(*store, "store", {"url", "settings_refresh_seconds"}));
    DEVID_TRY(ReadString(*store, "store", "url", config.store.url));
    DEVID_TRY(ReadInt(*store, "store", "settings_refresh_seconds",
                      config.store.settings_refresh_seconds, 1, 3600));
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* tls, Section(root, "tls"));
  if (tls) {
    DEVID_TRY(CheckKeys(*tls, "tls", {"certificate_file", "key_file", "trust_bundle_file"}));
    DEVID_TRY(ReadString(*tls, "tls", "certificate_file", config.tls.certificate_file));
    DEVID_TRY(ReadString(*tls, "tls", "key_file", config.tls.key_file));
    DEVID_TRY(ReadString(*tls, "tls", "trust_bundle_file", config.tls.trust_bundle_file));
    if (config.tls.certificate_file.empty() != config.tls.key_file.empty()) {
      return std::unexpected(
          KeyError("tls", "certificate_file and key_file must be given together"));
    }
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* ca, Section(root, "ca"));
  if (ca) {
    DEVID_TRY(CheckKeys(*ca, "ca",
                        {"base_url", "key_algorithm", "root_key_uri", "issuing_key_uri",
                         "passphrase_env", "command_signer_key_uri", "token_signer_key_uri",
                         "directory"}));
    auto& c = config.ca;
    DEVID_TRY(ReadString(*ca, "ca", "base_url", c.base_url));
    DEVID_TRY(ReadString(*ca, "ca", "key_algorithm", c.key_algorithm));
    DEVID_TRY(ReadString(*ca, "ca", "root_key_uri", c.root_key_uri));
    DEVID_TRY(ReadString(*ca, "ca", "issuing_key_uri", c.issuing_key_uri));
    DEVID_TRY(ReadString(*ca, "ca", "passphrase_env", c.passphrase_env));
    DEVID_TRY(ReadString(*ca, "ca", "directory", c.directory));
    DEVID_TRY(ReadString(*ca, "ca", "command_signer_key_uri", c.command_signer_key_uri));
    DEVID_TRY(ReadString(*ca, "ca", "token_signer_key_uri", c.token_signer_key_uri));
    if (!c.base_url.empty() && !c.base_url.starts_with("https://") &&
        !c.base_url.starts_with("http://")) {
      return std::unexpected(KeyError("ca.base_url", "must be an http:// or https:// URL"));
    }
    while (c.base_url.ends_with('/')) c.base_url.pop_back();
    if (auto algorithm = keys::ParseKeyAlgorithm(c.key_algorithm); !algorithm) {
      return std::unexpected(KeyError("ca.key_algorithm", algorithm.error().message()));
    }
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* x509, Section(root, "x509"));
  if (x509) {
    DEVID_TRY(CheckKeys(*x509, "x509",
                        {"crl_files", "fetch_crls", "crl_unavailable", "crl_request_wait_ms",
                         "crl_fetch_timeout_ms", "crl_refresh_before_seconds",
                         "crl_max_age_seconds", "crl_retry_seconds", "crl_poll_ms"}));
    auto& x = config.x509;
    DEVID_TRY(ReadStrings(*x509, "x509", "crl_files", x.crl_files));
    DEVID_TRY(ReadBool(*x509, "x509", "fetch_crls", x.fetch_crls));
    DEVID_TRY(ReadString(*x509, "x509", "crl_unavailable", x.crl_unavailable));
    if (x.crl_unavailable != "reject" && x.crl_unavailable != "accept") {
      return std::unexpected(KeyError("x509.crl_unavailable", "must be \"reject\" or \"accept\""));
    }
    DEVID_TRY(ReadInt(*x509, "x509", "crl_request_wait_ms", x.crl_request_wait_ms, 0, 60000));
    DEVID_TRY(ReadInt(*x509, "x509", "crl_fetch_timeout_ms", x.crl_fetch_timeout_ms, 100, 60000));
    DEVID_TRY(ReadInt(*x509, "x509", "crl_refresh_before_seconds", x.crl_refresh_before_seconds,
                      0, 86400 * 7));
    DEVID_TRY(ReadInt(*x509, "x509", "crl_max_age_seconds", x.crl_max_age_seconds, 1,
                      86400 * 30));
    DEVID_TRY(ReadInt(*x509, "x509", "crl_retry_seconds", x.crl_retry_seconds, 1, 86400));
    DEVID_TRY(ReadInt(*x509, "x509", "crl_poll_ms", x.crl_poll_ms, 10, 3600 * 1000));
  }
  DEVID_ASSIGN_OR_RETURN(const toml::table* tokens, Section(root, "tokens"));
  if (tokens) DEVID_TRY(ParseTokens(*tokens, config.tokens));
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return std::unexpected(InvalidArgument("config: " + text.error().message()));
  auto config = ParseConfig(*text);
  if (!config) return std::unexpected(config.error().WithContext(path));
  return config;
}

Result<ListenAddress> ParseListen(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return std::unexpected(InvalidArgument("listen address \"" + std::string(text) +
                                           "\" is not host:port"));
  }
  ListenAddress out;
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  out.host = host.empty() ? "0.0.0.0" : std::string(host);
  std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return std::unexpected(InvalidArgument("listen address \"" + std::string(text) +
                                           "\" has no valid port"));
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace devid::server
