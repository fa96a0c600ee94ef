#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/http.h"
#include "api/json_response.h"
#include "base/result.h"
#include "registry/registry.h"

namespace devid::api {

// PageFrom reads the DPS paging headers: x-ms-max-item-count (1..1000; more is capped) and
// x-ms-continuation. Fails with kInvalidArgument on a count that is not a positive integer.
Result<registry::PageRequest> PageFrom(const Request& request);

// PageResponse renders one page as a JSON array with x-ms-item-type and, unless it is the last,
// x-ms-continuation.
template <typename T, typename ToJson>
Response PageResponse(const registry::Page<T>& page, std::string_view item_type, ToJson to_json) {
  nlohmann::json items = nlohmann::json::array();
  for (const T& item : page.items) items.push_back(to_json(item));
  Response response = JsonResponse(200, items);
  response.SetHeader("x-ms-item-type", std::string(item_type));
  if (!page.continuation.empty()) response.SetHeader("x-ms-continuation", page.continuation);
  return response;
}

}  // namespace devid::api
