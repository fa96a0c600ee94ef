#include "devid/peer_token_client.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "sdk/device_sas_token.h"
#include "sdk/https_client.h"

namespace devid::sdk {
namespace {

using nlohmann::json;

Error RefusalError(const HttpResponse& response) {
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string code = body.is_object() && body.contains("errorCode")
                         ? body["errorCode"].dump()
                         : std::string(response.HeaderValue("x-ms-error-code"));
  std::string message = body.is_object() && body.contains("message") && body["message"].is_string()
                            ? body["message"].get<std::string>()
                            : response.body.substr(0, 200);
  std::string text =
      "token authority: " + std::to_string(response.status) + " " + code + ": " + message;
  switch (response.status) {
    case 400:
      return InvalidArgument(text);
    case 401:
      return Unauthenticated(text);
    case 403:
      return PermissionDenied(text);
    case 404:
      return NotFound(text);
    case 409:
      return AlreadyExists(text);
    default:
      return response.status >= 500 ? Unavailable(text) : Internal(text);
  }
}

}  // namespace

Result<PeerTokenResponse> RequestPeerToken(const PeerTokenRequest& request) {
  std::vector<HttpHeader> headers = {{"content-type", "application/json"}};
  ClientTlsOptions tls{.trust_bundle_pem = request.trust_bundle_pem};
  if (request.sas_key) {
    DEVID_ASSIGN_OR_RETURN(
        std::string sas, DeviceSasToken(*request.sas_key, request.id_scope, request.registration_id));
    headers.emplace_back("authorization", std::move(sas));
  } else {
    tls.certificate_chain_pem = request.certificate_chain_pem;
    tls.client_key = request.key;
  }
  DEVID_ASSIGN_OR_RETURN(HttpsClient client,
                         HttpsClient::Connect(request.host, request.port, std::move(tls)));
  std::string body = json{{"audience", request.audience}, {"scope", request.scope}}.dump();
  DEVID_ASSIGN_OR_RETURN(HttpResponse response, client.Send("POST", "/tokens", headers, body));
  if (response.status != 200) return std::unexpected(RefusalError(response));
  json answer = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string() || !answer.contains("expires_in") ||
      !answer["expires_in"].is_number_integer()) {
    return std::unexpected(
        Internal("token authority: the answer has no access_token and expires_in"));
  }
  PeerTokenResponse granted{.token = answer["access_token"].get<std::string>(),
                            .scope = answer.value("scope", ""),
                            .expires_in = answer["expires_in"].get<int64_t>()};
  if (request.sas_key) {
    if (!answer.contains("session_key") || !answer["session_key"].is_string()) {
      return std::unexpected(Internal("token authority: the answer has no session_key"));
    }
    std::string& encoded = answer["session_key"].get_ref<std::string&>();
    auto key = PeerSessionKey::FromBase64(encoded);
    OPENSSL_cleanse(encoded.data(), encoded.size());
    if (!key) return std::unexpected(Internal("token authority: " + key.error().message()));
    granted.session_key = std::move(*key);
  }
  OPENSSL_cleanse(response.body.data(), response.body.size());
  return granted;
}

}  // namespace devid::sdk
