#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.h"
#include "base/clock.h"
#include "base/result.h"
#include "cli/connection.h"
#include "sdk/https_client.h"

namespace devid::cli {

// ServiceResponse is a successful (2xx) answer of the service API.
struct ServiceResponse {
  int status = 200;
  std::vector<sdk::HttpHeader> headers;  // names lowercase
  nlohmann::json body;               // null when the response has no body

  // HeaderValue returns the first value of header name (lowercase), or "" when absent.
  std::string_view HeaderValue(std::string_view name) const;
};

// ServiceClient calls the DPS service (management) API (protocol notes §6) over one kept-alive
// HTTPS connection, authorizing every request with a service SAS token (§2.5) valid for an hour.
// Paths are given without the api-version query, which it appends. A non-2xx answer becomes an
// Error whose code follows the HTTP status and whose message is the server's message plus its
// error code name and number ("enrollment \"x\" not found (NotFound 404001)"). Not thread-safe.
class ServiceClient {
 public:
  // Connect opens the connection and verifies the server against the trust bundle. It fails with
  // kInvalidArgument when the key is not base64, kUnavailable when the server cannot be reached and
  // kUnauthenticated when its certificate is rejected.
  static Result<ServiceClient> Connect(const Connection& connection, const Clock& clock);

  Result<ServiceResponse> Get(std::string_view path);
  // Put sends body; if_match, when non-empty, becomes an If-Match header.
  Result<ServiceResponse> Put(std::string_view path, const nlohmann::json& body,
                              std::string_view if_match = {});
  Result<ServiceResponse> Delete(std::string_view path, std::string_view if_match = {});
  Result<ServiceResponse> Post(std::string_view path, const nlohmann::json& body,
                               std::vector<sdk::HttpHeader> headers = {});

  // QueryAll posts body to a query path page by page (x-ms-max-item-count = page_size when
  // positive), following x-ms-continuation until the server sends none, and returns every item in
  // one array. It fails when a page does, or with kInternal when a page is not an array or the
  // server repeats a continuation token.
  Result<nlohmann::json> QueryAll(std::string_view path, const nlohmann::json& body, int page_size);

 private:
  ServiceClient(sdk::HttpsClient http, std::string authorization)
      : http_(std::move(http)), authorization_(std::move(authorization)) {}

  Result<ServiceResponse> Send(std::string_view method, std::string_view path,
                               std::vector<sdk::HttpHeader> headers, std::string_view body);

  sdk::HttpsClient http_;
  std::string authorization_;
};

// ServicePath returns "/collection/<id percent-encoded>" plus "/suffix" when suffix is non-empty.
std::string ServicePath(std::string_view collection, std::string_view id,
                        std::string_view suffix = {});

}  // namespace devid::cli
