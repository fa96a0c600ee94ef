#include "api/json_response.h"

namespace devid::api {

Response JsonResponse(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  response.SetHeader("Content-Type", "application/json; charset=utf-8");
  return response;
}

Result<nlohmann::json> ParseJsonBody(std::string_view body, bool empty_is_object) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos && empty_is_object) {
    return nlohmann::json::object();
  }
  nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::unexpected(InvalidArgument("the body is not valid JSON"));
  return json;
}

bool IsValidApiVersion(std::string_view version) {
  auto digits = [&](size_t from, size_t n) {
    for (size_t i = from; i < from + n; ++i) {
      if (version[i] < '0' || version[i] > '9') return false;
    }
    return true;
  };
  if (version.size() < 10) return false;
  if (!digits(0, 4) || version[4] != '-' || !digits(5, 2) || version[7] != '-' || !digits(8, 2)) {
    return false;
  }
  std::string_view rest = version.substr(10);
  return rest.empty() || rest == "-preview";
}

}  // namespace devid::api
