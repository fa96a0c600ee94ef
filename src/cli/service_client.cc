#include "cli/service_client.h"

#include <chrono>

#include "api/error_codes.h"
#include "base/url.h"
#include "ossl/base64.h"
#include "pki/sas_token.h"

namespace devid::cli {
namespace {

using nlohmann::json;

constexpr std::string_view kApiVersion = "2021-10-01";  // protocol notes §6
constexpr int64_t kTokenLifetimeSeconds = 3600;         // as the Azure SDKs (§2.1)

// ErrorCodeLabel names a DPS-style error code (api/error_codes.h), "" for an unknown one.
std::string_view ErrorCodeLabel(int code) {
  namespace ec = api::error_code;
  switch (code) {
    case ec::kMalformedRequest:
      return "MalformedRequest";
    case ec::kInvalidJson:
      return "InvalidJson";
    case ec::kInvalidField:
      return "InvalidField";
    case ec::kInvalidApiVersion:
      return "InvalidApiVersion";
    case ec::kRegistrationIdMismatch:
      return "RegistrationIdMismatch";
    case ec::kUnsupportedQuery:
      return "UnsupportedQuery";
    case ec::kMissingAuthorization:
      return "MissingAuthorization";
    case ec::kUnauthorized:
      return "Unauthorized";
    case ec::kEnrollmentDisabled:
      return "EnrollmentDisabled";
    case ec::kInsufficientRights:
      return "InsufficientRights";
    case ec::kNotFound:
      return "NotFound";
    case ec::kRegistrationNotFound:
      return "RegistrationNotFound";
    case ec::kOperationNotFound:
      return "OperationNotFound";
    case ec::kRouteNotFound:
      return "RouteNotFound";
    case ec::kCertificateNotFound:
      return "CertificateNotFound";
    case ec::kMethodNotAllowed:
      return "MethodNotAllowed";
    case ec::kAlreadyExists:
      return "AlreadyExists";
    case ec::kEtagMismatch:
      return "EtagMismatch";
    case ec::kBodyTooLarge:
      return "BodyTooLarge";
    case ec::kHeaderTooLarge:
      return "HeaderTooLarge";
    case ec::kThrottled:
      return "Throttled";
    case ec::kInternal:
      return "Internal";
    case ec::kUnavailable:
      return "Unavailable";
  }
  return "";
}

ErrorCode CodeForStatus(int status) {
  switch (status) {
    case 400:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kAlreadyExists;
    case 412:
      return ErrorCode::kFailedPrecondition;
    case 429:
      return ErrorCode::kResourceExhausted;
    case 503:
      return ErrorCode::kUnavailable;
  }
  return status >= 500 ? ErrorCode::kInternal : ErrorCode::kInvalidArgument;
}

// ServerError turns a non-2xx response into an Error carrying the server's own words.
Error ServerError(std::string_view method, std::string_view path,
                  const sdk::HttpResponse& response) {
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  if (body.is_object() && body.contains("message") && body["message"].is_string()) {
    message = body["message"].get<std::string>();
  } else {
    message = std::string(method) + " " + std::string(path) + " failed";
  }
  int code = 0;
  if (body.is_object() && body.contains("errorCode") && body["errorCode"].is_number_integer()) {
    code = body["errorCode"].get<int>();
  }
  std::string suffix;
  if (code != 0) {
    std::string_view label = ErrorCodeLabel(code);
    suffix = label.empty() ? std::to_string(code) : std::string(label) + " " + std::to_string(code);
  } else {
    suffix = "HTTP " + std::to_string(response.status);
  }
  return Error(CodeForStatus(response.status), message + " (" + suffix + ")");
}

std::string_view FindHeader(const std::vector<sdk::HttpHeader>& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

}  // namespace

std::string_view ServiceResponse::HeaderValue(std::string_view name) const {
  return FindHeader(headers, name);
}

std::string ServicePath(std::string_view collection, std::string_view id, std::string_view suffix) {
  std::string path = "/" + std::string(collection) + "/" + PercentEncodeComponent(id);
  if (!suffix.empty()) path += "/" + std::string(suffix);
  return path;
}

Result<ServiceClient> ServiceClient::Connect(const Connection& connection, const Clock& clock) {
  auto key = ossl::Base64Decode(connection.credentials.key);
  if (!key) {
    return std::unexpected(InvalidArgument("connection string: SharedAccessKey is not base64"));
  }
  // §2.5: sr is the service host name; the SDKs send it encodeUriComponentStrict-encoded and sign
  // it as sent.
  std::string authorization = pki::CreateSasToken(
      *key, PercentEncodeComponent(connection.credentials.host_name, /*strict=*/true),
      clock.UnixSeconds() + kTokenLifetimeSeconds, connection.credentials.key_name);
  sdk::ClientTlsOptions tls;
  tls.trust_bundle_pem = connection.trust_bundle_pem;
  DEVID_ASSIGN_OR_RETURN(
      auto http, sdk::HttpsClient::Connect(connection.endpoint.host, connection.endpoint.port,
                                           std::move(tls)));
  return ServiceClient(std::move(http), std::move(authorization));
}

Result<ServiceResponse> ServiceClient::Send(std::string_view method, std::string_view path,
                                            std::vector<sdk::HttpHeader> headers,
                                            std::string_view body) {
  // A path may carry its own query (?ttl=); api-version joins it.
  std::string target = std::string(path) + (path.find('?') == std::string_view::npos ? "?" : "&") +
                       "api-version=" + std::string(kApiVersion);
  headers.emplace_back("accept", "application/json");
  headers.emplace_back("authorization", authorization_);
  headers.emplace_back("user-agent", "devid-cli");
  if (!body.empty()) headers.emplace_back("content-type", "application/json; charset=utf-8");
  DEVID_ASSIGN_OR_RETURN(sdk::HttpResponse response, http_.Send(method, target, headers, body));
  if (response.status < 200 || response.status > 299) {
    return std::unexpected(ServerError(method, path, response));
  }
  ServiceResponse out;
  out.status = response.status;
  if (!response.body.empty()) {
    out.body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (out.body.is_discarded()) {
      return std::unexpected(
          Internal(std::string(method) + " " + std::string(path) + ": the response is not JSON"));
    }
  }
  out.headers = std::move(response.headers);
  return out;
}

Result<ServiceResponse> ServiceClient::Get(std::string_view path) {
  return Send("GET", path, {}, {});
}

Result<ServiceResponse> ServiceClient::Put(std::string_view path, const json& body,
                                           std::string_view if_match) {
  std::vector<sdk::HttpHeader> headers;
  if (!if_match.empty()) headers.emplace_back("if-match", std::string(if_match));
  return Send("PUT", path, std::move(headers), body.dump());
}

Result<ServiceResponse> ServiceClient::Delete(std::string_view path, std::string_view if_match) {
  std::vector<sdk::HttpHeader> headers;
  if (!if_match.empty()) headers.emplace_back("if-match", std::string(if_match));
  return Send("DELETE", path, std::move(headers), {});
}

Result<ServiceResponse> ServiceClient::Post(std::string_view path, const json& body,
                                            std::vector<sdk::HttpHeader> headers) {
  return Send("POST", path, std::move(headers), body.dump());
}

Result<json> ServiceClient::QueryAll(std::string_view path, const json& body, int page_size) {
  json items = json::array();
  std::string continuation;
  while (true) {
    std::vector<sdk::HttpHeader> headers;
    if (page_size > 0) headers.emplace_back("x-ms-max-item-count", std::to_string(page_size));
    if (!continuation.empty()) headers.emplace_back("x-ms-continuation", continuation);
    DEVID_ASSIGN_OR_RETURN(ServiceResponse page, Post(path, body, std::move(headers)));
    if (!page.body.is_array()) {
      return std::unexpected(Internal("POST " + std::string(path) + ": the page is not an array"));
    }
    for (auto& item : page.body) items.push_back(std::move(item));
    std::string next(page.HeaderValue("x-ms-continuation"));
    if (next.empty()) return items;
    if (next == continuation) {
      return std::unexpected(
          Internal("POST " + std::string(path) + ": the server repeated a continuation token"));
    }
    continuation = std::move(next);
  }
}

}  // namespace devid::cli
