#include "api/service_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_model.h"
#include "api/json_response.h"
#include "api/paging.h"
#include "attestation/x509/ca_reference.h"
#include "ossl/base64.h"

namespace devid::api {
namespace {

using nlohmann::json;

// The two enrollment kinds share every route; traits say where they differ.
struct IndividualTraits {
  using Item = registry::Enrollment;
  static constexpr std::string_view kIdField = "registrationId";
  static constexpr std::string_view kItemType = "Enrollment";
  static constexpr std::string_view kNoun = "enrollment";
  static Result<Item> Get(registry::Registry& r, std::string_view id) { return r.GetEnrollment(id); }
  static Result<Item> Put(registry::Registry& r, const Item& item,
                          const std::optional<std::string>& if_match, const registry::Actor& a) {
    return r.PutEnrollment(item, if_match, a);
  }
  static Status Delete(registry::Registry& r, std::string_view id,
                       const std::optional<std::string>& if_match, const registry::Actor& a) {
    return r.DeleteEnrollment(id, if_match, a);
  }
  static Result<registry::Page<Item>> Query(registry::Registry& r, const registry::PageRequest& p) {
    return r.QueryEnrollments(p);
  }
  static Result<Item> FromJson(const json& j) { return EnrollmentFromJson(j); }
  static json ToJson(registry::Registry& r, const Item& item) {
    auto registration = r.GetRegistration(item.registration_id);
    return EnrollmentToJson(item, registration ? &*registration : nullptr);
  }
  static const std::string& Id(const Item& item) { return item.registration_id; }
  static registry::EnrollmentSettings& Settings(Item& item) { return item.settings; }
};

struct GroupTraits {
  using Item = registry::EnrollmentGroup;
  static constexpr std::string_view kIdField = "enrollmentGroupId";
  static constexpr std::string_view kItemType = "EnrollmentGroup";
  static constexpr std::string_view kNoun = "enrollment group";
  static Result<Item> Get(registry::Registry& r, std::string_view id) {
    return r.GetEnrollmentGroup(id);
  }
  static Result<Item> Put(registry::Registry& r, const Item& item,
                          const std::optional<std::string>& if_match, const registry::Actor& a) {
    return r.PutEnrollmentGroup(item, if_match, a);
  }
  static Status Delete(registry::Registry& r, std::string_view id,
                       const std::optional<std::string>& if_match, const registry::Actor& a) {
    return r.DeleteEnrollmentGroup(id, if_match, a);
  }
  static Result<registry::Page<Item>> Query(registry::Registry& r, const registry::PageRequest& p) {
    return r.QueryEnrollmentGroups(p);
  }
  static Result<Item> FromJson(const json& j) { return EnrollmentGroupFromJson(j); }
  static json ToJson(registry::Registry&, const Item& item) { return EnrollmentGroupToJson(item); }
  static const std::string& Id(const Item& item) { return item.enrollment_group_id; }
  static registry::EnrollmentSettings& Settings(Item& item) { return item.settings; }
};

std::optional<std::string> IfMatch(const Request& request) {
  std::string_view value = request.HeaderValue("if-match");
  if (value.empty() || value == "*") return std::nullopt;
  return std::string(value);
}

// IsSelectAll accepts the one query the DPS service API supports: SELECT * FROM <collection>.
bool IsSelectAll(const json& body, std::string_view collection) {
  if (!body.is_object() || !body.contains("query") || !body["query"].is_string()) return false;
  std::string words;
  for (char c : body["query"].get<std::string>()) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!words.empty() && words.back() != ' ') words += ' ';
    } else {
      words += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!words.empty() && words.back() == ' ') words.pop_back();
  std::string expected = "select * from " + std::string(collection);
  std::transform(expected.begin(), expected.end(), expected.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return words == expected;
}

Response Failure(const Error& error, const std::string& tracking_id) {
  if (error.code() == ErrorCode::kInternal || error.code() == ErrorCode::kUnavailable) {
    spdlog::error("service request failed: {} trackingId={}", error.message(), tracking_id);
  }
  return ErrorResponseFor(error, tracking_id);
}

// RefuseCaReferences answers a write whose caReferences names a CA certificate that is not
// uploaded or not verified (400010, field prefixing the message), as the DPS portal offers only
// verified certificates to groups, or the store's error; nullopt when the write may go on.
std::optional<Response> RefuseCaReferences(registry::Registry& registry,
                                           const registry::AttestationMechanism& attestation,
                                           const std::string& field,
                                           const std::string& tracking_id) {
  auto checked = attestation::CheckCaReferences(registry, attestation);
  if (checked) return std::nullopt;
  const Error& error = checked.error();
  if (error.code() != ErrorCode::kNotFound && error.code() != ErrorCode::kFailedPrecondition) {
    return Failure(error, tracking_id);
  }
  return ErrorResponse(error_code::kCaReferenceNotVerified,
                       field + "attestation.x509.caReferences: " + error.message(), tracking_id);
}

}  // namespace

void ServiceApi::FillGeneratedKeys(registry::AttestationMechanism& attestation) {
  if (attestation.type != registry::AttestationType::kSymmetricKey) return;
  auto& keys = attestation.symmetric_key;
  if (keys.primary_key.empty()) keys.primary_key = ossl::Base64Encode(random_.Bytes(64));
  if (keys.secondary_key.empty()) keys.secondary_key = ossl::Base64Encode(random_.Bytes(64));
}

Response ServiceApi::Handle(const Request& request, const Target& target,
                            const std::string& tracking_id) {
  const size_t last = target.segments.size() - 1;
  const bool registrations = target.SegmentIs(0, "registrations");
  ServiceRight needed;
  bool reads = request.method == "GET" ||
               (request.method == "POST" && last > 0 &&
                (target.SegmentIs(last, "query") || target.SegmentIs(last, "attestationmechanism")));
  if (registrations) {
    needed = reads ? ServiceRight::kRegistrationStatusRead : ServiceRight::kRegistrationStatusWrite;
  } else {
    needed = reads ? ServiceRight::kEnrollmentRead : ServiceRight::kEnrollmentWrite;
  }
  auto actor = AuthorizeServiceRequest(auth_, request, target, needed, tracking_id);
  if (!actor) return std::move(actor.error());
  if (registrations) return HandleRegistrations(request, target, *actor, tracking_id);
  if (target.SegmentIs(0, "enrollments")) {
    return HandleCollection<IndividualTraits>(request, target, *actor, tracking_id);
  }
  return HandleCollection<GroupTraits>(request, target, *actor, tracking_id);
}

template <typename Traits>
Response ServiceApi::HandleCollection(const Request& request, const Target& target,
                                      const std::string& actor, const std::string& tracking_id) {
  const auto& s = target.segments;
  // /enrollments or /enrollments/ (bulk), /enrollments/query, /enrollments/{id},
  // /enrollments/{id}/attestationmechanism
  if (s.size() == 1 || (s.size() == 2 && s[1].empty())) {
    if (request.method != "POST") {
      return ErrorResponse(error_code::kMethodNotAllowed, "bulk operations take POST", tracking_id);
    }
    return Bulk<Traits>(request, actor, tracking_id);
  }
  const std::string& id = s[1];
  if (s.size() == 2 && target.SegmentIs(1, "query") && request.method == "POST") {
    return Query<Traits>(request, tracking_id);
  }
  if (s.size() == 3 && target.SegmentIs(2, "attestationmechanism")) {
    if (request.method != "POST") {
      return ErrorResponse(error_code::kMethodNotAllowed, "attestationmechanism takes POST",
                           tracking_id);
    }
    auto item = Traits::Get(registry_, id);
    if (!item) return Failure(item.error(), tracking_id);
    return JsonResponse(200, AttestationToJson(Traits::Settings(*item).attestation));
  }
  if (s.size() != 2) {
    return ErrorResponse(error_code::kRouteNotFound, "no service route " + target.path,
                         tracking_id);
  }
  if (request.method == "GET") {
    auto item = Traits::Get(registry_, id);
    if (!item) return Failure(item.error(), tracking_id);
    return JsonResponse(200, Traits::ToJson(registry_, *item));
  }
  if (request.method == "PUT") return Put<Traits>(request, id, actor, tracking_id);
  if (request.method == "DELETE") {
    auto deleted = Traits::Delete(registry_, id, IfMatch(request), registry::Actor{actor});
    if (!deleted) return Failure(deleted.error(), tracking_id);
    Response response;
    response.status = 204;
    return response;
  }
  return ErrorResponse(error_code::kMethodNotAllowed,
                       request.method + " is not allowed on " + target.path, tracking_id);
}

template <typename Traits>
Response ServiceApi::Put(const Request& request, const std::string& id, const std::string& actor,
                         const std::string& tracking_id) {
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto named = body->find(std::string(Traits::kIdField));
  if (named == body->end() || named->is_null()) {
    (*body)[std::string(Traits::kIdField)] = id;
  } else if (!named->is_string() || named->get<std::string>() != id) {
    return ErrorResponse(error_code::kRegistrationIdMismatch,
                         std::string(Traits::kIdField) + " in the body does not match the path",
                         tracking_id);
  }
  auto item = Traits::FromJson(*body);
  if (!item) return ErrorResponse(error_code::kInvalidField, item.error().message(), tracking_id);
  FillGeneratedKeys(Traits::Settings(*item).attestation);
  if (auto refused =
          RefuseCaReferences(registry_, Traits::Settings(*item).attestation, "", tracking_id)) {
    return std::move(*refused);
  }
  auto stored = Traits::Put(registry_, *item, IfMatch(request), registry::Actor{actor});
  if (!stored) return Failure(stored.error(), tracking_id);
  return JsonResponse(200, Traits::ToJson(registry_, *stored));
}

template <typename Traits>
Response ServiceApi::Query(const Request& request, const std::string& tracking_id) {
  auto body = ParseJsonBody(request.body);
  if (!body) return ErrorResponse(error_code::kInvalidJson, body.error().message(), tracking_id);
  std::string collection = std::is_same_v<Traits, IndividualTraits> ? "enrollments"
                                                                     : "enrollmentGroups";
  if (!body->empty() && !IsSelectAll(*body, collection)) {
    return ErrorResponse(error_code::kUnsupportedQuery,
                         "query: only \"SELECT * FROM " + collection + "\" is supported",
                         tracking_id);
  }
  auto page = PageFrom(request);
  if (!page) return ErrorResponse(error_code::kInvalidField, page.error().message(), tracking_id);
  auto result = Traits::Query(registry_, *page);
  if (!result) return Failure(result.error(), tracking_id);
  return PageResponse(*result, Traits::kItemType,
                      [&](const auto& item) { return Traits::ToJson(registry_, item); });
}

template <typename Traits>
Response ServiceApi::Bulk(const Request& request, const std::string& actor,
                          const std::string& tracking_id) {
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  std::string mode = body->value("mode", "");
  if (mode != "create" && mode != "update" && mode != "updateIfMatchETag" && mode != "delete") {
    return ErrorResponse(error_code::kInvalidField,
                         "mode: must be create, update, updateIfMatchETag or delete", tracking_id);
  }
  const char* list_field = std::is_same_v<Traits, IndividualTraits> ? "enrollments"
                                                                     : "enrollmentGroups";
  auto list = body->find(list_field);
  if (list == body->end() || !list->is_array() || list->empty()) {
    return ErrorResponse(error_code::kInvalidField,
                         std::string(list_field) + ": must be a non-empty array", tracking_id);
  }
  // Validate everything first, so a malformed item fails the whole request and writes nothing.
  std::vector<typename Traits::Item> items;
  for (size_t i = 0; i < list->size(); ++i) {
    auto item = Traits::FromJson((*list)[i]);
    if (!item) {
      return ErrorResponse(error_code::kInvalidField,
                           std::string(list_field) + "[" + std::to_string(i) + "]." +
                               item.error().message(),
                           tracking_id);
    }
    FillGeneratedKeys(Traits::Settings(*item).attestation);
    if (mode != "delete") {
      std::string field = std::string(list_field) + "[" + std::to_string(i) + "].";
      if (auto refused = RefuseCaReferences(registry_, Traits::Settings(*item).attestation, field,
                                            tracking_id)) {
        return std::move(*refused);
      }
    }
    items.push_back(std::move(*item));
  }
  json errors = json::array();
  registry::Actor who{actor};
  for (auto& item : items) {
    Status outcome = Ok();
    if (mode == "delete") {
      outcome = Traits::Delete(registry_, Traits::Id(item), std::nullopt, who);
    } else if (mode == "create") {
      auto existing = Traits::Get(registry_, Traits::Id(item));
      if (existing) {
        outcome = std::unexpected(AlreadyExists(std::string(Traits::kNoun) + " " +
                                                Traits::Id(item) + " already exists"));
      } else if (existing.error().code() != ErrorCode::kNotFound) {
        outcome = std::unexpected(existing.error());
      } else {
        auto put = Traits::Put(registry_, item, std::nullopt, who);
        if (!put) outcome = std::unexpected(put.error());
      }
    } else {
      std::optional<std::string> if_match;
      if (mode == "updateIfMatchETag" && !Traits::Settings(item).etag.empty()) {
        if_match = Traits::Settings(item).etag;
      }
      auto put = Traits::Put(registry_, item, if_match, who);
      if (!put) outcome = std::unexpected(put.error());
    }
    if (!outcome) {
      json entry = {{std::string(Traits::kIdField), Traits::Id(item)},
                    {"errorCode", DpsErrorCode(outcome.error())},
                    {"errorStatus", outcome.error().message()}};
      errors.push_back(entry);
    }
  }
  return JsonResponse(200, {{"isSuccessful", errors.empty()}, {"errors", errors}});
}

Response ServiceApi::HandleRegistrations(const Request& request, const Target& target,
                                         const std::string& actor,
                                         const std::string& tracking_id) {
  const auto& s = target.segments;
  if (s.size() == 3 && target.SegmentIs(2, "query") && request.method == "POST") {
    auto page = PageFrom(request);
    if (!page) return ErrorResponse(error_code::kInvalidField, page.error().message(), tracking_id);
    auto result = registry_.QueryGroupRegistrations(s[1], *page);
    if (!result) return Failure(result.error(), tracking_id);
    return PageResponse(*result, "DeviceRegistration",
                        [](const registry::Registration& r) { return RegistrationStateToJson(r); });
  }
  if (s.size() != 2 || s[1].empty()) {
    return ErrorResponse(error_code::kRouteNotFound, "no service route " + target.path,
                         tracking_id);
  }
  if (request.method == "GET") {
    auto registration = registry_.GetRegistration(s[1]);
    if (!registration && registration.error().code() == ErrorCode::kNotFound) {
      return ErrorResponse(error_code::kRegistrationNotFound, registration.error().message(),
                           tracking_id);
    }
    if (!registration) return Failure(registration.error(), tracking_id);
    return JsonResponse(200, RegistrationStateToJson(*registration));
  }
  if (request.method == "DELETE") {
    auto deleted = registry_.DeleteRegistration(s[1], IfMatch(request), registry::Actor{actor});
    if (!deleted) return Failure(deleted.error(), tracking_id);
    Response response;
    response.status = 204;
    return response;
  }
  return ErrorResponse(error_code::kMethodNotAllowed,
                       request.method + " is not allowed on " + target.path, tracking_id);
}

}  // namespace devid::api
