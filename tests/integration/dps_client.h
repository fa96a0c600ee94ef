#pragma once

// DpsClient: a device or operator talking HTTPS to one `devid serve` process, for the
// integration tests that run several servers or stores.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "sdk/https_client.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"
#include "server_process.h"

namespace devid::testing {

// ConnectionStringValue returns the value of name in a "K=V;K=V" connection string, or "".
inline std::string ConnectionStringValue(const std::string& connection_string,
                                         const std::string& name) {
  std::string key = name + "=";
  size_t at = connection_string.find(key);
  if (at == std::string::npos) return "";
  size_t end = connection_string.find(';', at);
  return connection_string.substr(
      at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
}

// DpsClient holds one keep-alive connection to server, trusting only that server's bundle, and
// signs service requests with the server's service connection string and device requests with
// the device key given. Not thread-safe: one per thread. It must not outlive server.
class DpsClient {
 public:
  explicit DpsClient(const ServerProcess& server) : server_(server) {
    sdk::ClientTlsOptions tls;
    tls.trust_bundle_pem = server.trust_bundle_pem();
    tls.server_name = "localhost";
    tls.timeout = std::chrono::seconds(10);
    auto client = sdk::HttpsClient::Connect("127.0.0.1", server.port(), tls);
    if (client) client_.emplace(std::move(*client));
  }

  // connected tells whether the first connection succeeded; the calls below need it.
  bool connected() const { return client_.has_value(); }

  // Service calls the service API with a fresh SAS token.
  Result<sdk::HttpResponse> Service(const std::string& method, const std::string& path,
                                const nlohmann::json& body = nullptr,
                                std::vector<sdk::HttpHeader> headers = {}) {
    std::string cs = server_.service_connection_string();
    return ServiceAs(ConnectionStringValue(cs, "SharedAccessKeyName"),
                     ConnectionStringValue(cs, "SharedAccessKey"), method, path, body,
                     std::move(headers));
  }

  // ServiceAs calls the service API with a fresh SAS token of policy key_name signed with key
  // (base64), not the server's connection string.
  Result<sdk::HttpResponse> ServiceAs(const std::string& key_name, const std::string& key,
                                  const std::string& method, const std::string& path,
                                  const nlohmann::json& body = nullptr,
                                  std::vector<sdk::HttpHeader> headers = {}) {
    std::string host_name =
        ConnectionStringValue(server_.service_connection_string(), "HostName");
    headers.emplace_back("authorization",
                         pki::CreateSasToken(*ossl::Base64Decode(key), host_name,
                                             SystemClock().UnixSeconds() + 600, key_name));
    headers.emplace_back("content-type", "application/json; charset=utf-8");
    std::string query = path.find('?') == std::string::npos ? "?" : "&";
    return client_->Send(method, path + query + "api-version=2021-10-01", headers,
                         body.is_null() ? "" : body.dump());
  }

  // DeviceToken signs a device SAS token for reg_id in id_scope (default: the server's at start)
  // with device_key (base64).
  std::string DeviceToken(const std::string& device_key, const std::string& reg_id,
                          const std::string& id_scope = "") const {
    auto key = ossl::Base64Decode(device_key);
    return pki::CreateSasToken(
        *key, (id_scope.empty() ? server_.id_scope() : id_scope) + "/registrations/" + reg_id,
        SystemClock().UnixSeconds() + 600, "registration");
  }

  // Register registers reg_id in id_scope (default: the server's at start), authenticating with
  // device_key (base64).
  Result<sdk::HttpResponse> Register(const std::string& reg_id, const std::string& device_key,
                                 const std::string& id_scope = "") {
    std::string scope = id_scope.empty() ? server_.id_scope() : id_scope;
    return client_->Send(
        "PUT", "/" + scope + "/registrations/" + reg_id + "/register?api-version=2019-03-31",
        {{"content-type", "application/json; charset=utf-8"},
         {"authorization", DeviceToken(device_key, reg_id, scope)}},
        R"({"registrationId":")" + reg_id + "\"}");
  }

  // Poll reads the status of a registration operation.
  Result<sdk::HttpResponse> Poll(const std::string& reg_id, const std::string& device_key,
                             const std::string& operation_id) {
    return client_->Send("GET",
                         "/" + server_.id_scope() + "/registrations/" + reg_id + "/operations/" +
                             operation_id + "?api-version=2019-03-31",
                         {{"authorization", DeviceToken(device_key, reg_id)}});
  }

 private:
  const ServerProcess& server_;
  std::optional<sdk::HttpsClient> client_;
};

}  // namespace devid::testing
