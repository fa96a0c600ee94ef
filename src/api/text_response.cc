#include "api/text_response.h"

namespace devid::api {

Response TextResponse(int status, std::string message) {
  Response response;
  response.status = status;
  response.SetHeader("Content-Type", "text/plain; charset=utf-8");
  response.body = std::move(message) + "\n";
  return response;
}

}  // namespace devid::api
