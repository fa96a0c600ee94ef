#include "api/router.h"

#include <algorithm>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "api/target.h"

namespace devid::api {

Response Router::Handle(const Request& request) {
  std::string tracking_id = random_.Uuid();
  auto target = ParseTarget(request.target);
  if (!target) {
    return ErrorResponse(error_code::kMalformedRequest, target.error().message(), tracking_id);
  }
  const auto& s = target->segments;
  Response response;
  auto route = std::find_if(routes_.begin(), routes_.end(),
                            [&](const Route* r) { return r->Matches(*target); });
  if (s.size() == 1 && s[0] == "healthz") {
    response = JsonResponse(200, {{"status", "ok"}});
  } else if (route != routes_.end()) {
    response = (*route)->Handle(request, *target, tracking_id);
  } else if (service_ != nullptr &&
             (target->SegmentIs(0, "enrollments") || target->SegmentIs(0, "enrollmentGroups") ||
              target->SegmentIs(0, "registrations"))) {
    response = service_->Handle(request, *target, tracking_id);
  } else if (device_ != nullptr && s.size() >= 3 && s[1] == "registrations") {
    response = device_->Handle(request, *target, tracking_id);
  } else {
    response = ErrorResponse(error_code::kRouteNotFound, "no route " + target->path, tracking_id);
  }
  response.SetHeader("x-ms-request-id", tracking_id);
  return response;
}

std::optional<Response> Router::TryHandleNow(const Request& request) {
  auto target = ParseTarget(request.target);
  if (!target || (target->segments.size() == 1 && target->segments[0] == "healthz")) {
    return std::nullopt;
  }
  for (Route* route : routes_) {
    if (route->Matches(*target)) return route->TryHandleNow(request, *target);
  }
  return std::nullopt;
}

}  // namespace devid::api
