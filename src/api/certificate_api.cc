#include "api/certificate_api.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "api/paging.h"
#include "base/clock.h"
#include "ossl/base64.h"
#include "ossl/unique_ptr.h"
#include "pki/certificate.h"
#include "pki/crl_reason.h"

namespace devid::api {
namespace {

using nlohmann::json;

// HexDigits uppercases text and drops ':' separators (as `openssl x509 -fingerprint` prints);
// fails unless what remains is hex.
Result<std::string> HexDigits(std::string_view text, std::string_view what) {
  std::string out;
  for (char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return std::unexpected(InvalidArgument(std::string(what) + " must be hexadecimal"));
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (out.empty()) return std::unexpected(InvalidArgument(std::string(what) + " is empty"));
  return out;
}

// CanonicalSerial renders a serial as pki::Certificate::SerialHex does (whole bytes, uppercase),
// whatever leading zeros the caller wrote.
Result<std::string> CanonicalSerial(std::string_view text) {
  DEVID_ASSIGN_OR_RETURN(std::string hex, HexDigits(text, "serialNumber"));
  if (hex.size() > 40) return std::unexpected(InvalidArgument("serialNumber is over 20 octets"));
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) == 0) {
    return std::unexpected(InvalidArgument("serialNumber must be hexadecimal"));
  }
  ossl::UniquePtr<BIGNUM> bn(raw);
  char* canonical = BN_bn2hex(bn.get());
  std::string out(canonical);
  OPENSSL_free(canonical);
  return out;
}

// SetThumbprint puts a SHA-256 (64 digits) or SHA-1 (40 digits) thumbprint into filter.
Status SetThumbprint(std::string_view text, registry::CertificateFilter& filter) {
  DEVID_ASSIGN_OR_RETURN(std::string hex, HexDigits(text, "thumbprint"));
  if (hex.size() == 64) {
    filter.sha256_thumbprint = std::move(hex);
  } else if (hex.size() == 40) {
    filter.sha1_thumbprint = std::move(hex);
  } else {
    return std::unexpected(
        InvalidArgument("thumbprint must be a SHA-256 (64 hex digits) or SHA-1 (40) thumbprint"));
  }
  return Ok();
}

std::string StatusOf(const registry::CertificateRecord& record, const Clock& clock) {
  if (record.revoked) return "revoked";
  if (record.not_after <= clock.Now()) return "expired";
  return "valid";
}

json RecordToJson(const registry::CertificateRecord& record, const Clock& clock, bool with_pem) {
  json out = {
      {"sha256Thumbprint", record.sha256_thumbprint},
      {"sha1Thumbprint", record.sha1_thumbprint},
      {"serialNumber", record.serial},
      {"subject", record.subject},
      {"issuer", record.issuer},
      {"issuerKeyId", record.issuer_key_id},
      {"notBefore", FormatUtc(record.not_before)},
      {"notAfter", FormatUtc(record.not_after)},
      {"deviceId", record.device_id},
      {"profile", record.profile},
      {"source", record.source == registry::CertificateSource::kIssued ? "issued" : "observed"},
      {"status", StatusOf(record, clock)},
      {"firstSeen", FormatUtc(record.first_seen)},
      {"lastSeen", FormatUtc(record.last_seen)},
  };
  if (record.revoked) {
    out["revocationReason"] = std::string(pki::CrlReasonName(record.revocation_reason));
    out["revokedAt"] = FormatUtc(record.revoked_at);
  }
  if (with_pem) {
    auto certificate = pki::Certificate::FromDer(record.der);
    if (certificate) out["certificate"] = certificate->ToPem();
  }
  return out;
}

// OptionalString reads a string member; fails when it is present with another type.
Result<std::optional<std::string>> OptionalString(const json& body, const char* name) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  if (!body[name].is_string()) {
    return std::unexpected(InvalidArgument(std::string(name) + " must be a string"));
  }
  return body[name].get<std::string>();
}

Result<registry::CertificateFilter> FilterFromJson(const json& body, const Clock& clock) {
  static const char* kKnown[] = {"deviceId", "serialNumber", "thumbprint",
                                 "source",   "revoked",      "expiringWithinSeconds"};
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return std::unexpected(InvalidArgument("unknown filter field \"" + key + "\""));
    }
  }
  registry::CertificateFilter filter;
  DEVID_ASSIGN_OR_RETURN(filter.device_id, OptionalString(body, "deviceId"));
  DEVID_ASSIGN_OR_RETURN(auto serial, OptionalString(body, "serialNumber"));
  if (serial) {
    DEVID_ASSIGN_OR_RETURN(filter.serial, CanonicalSerial(*serial));
  }
  DEVID_ASSIGN_OR_RETURN(auto thumbprint, OptionalString(body, "thumbprint"));
  if (thumbprint) DEVID_TRY(SetThumbprint(*thumbprint, filter));
  DEVID_ASSIGN_OR_RETURN(auto source, OptionalString(body, "source"));
  if (source) {
    if (*source == "issued") {
      filter.source = registry::CertificateSource::kIssued;
    } else if (*source == "observed") {
      filter.source = registry::CertificateSource::kObserved;
    } else {
      return std::unexpected(InvalidArgument("source must be \"issued\" or \"observed\""));
    }
  }
  if (body.contains("revoked")) {
    if (!body["revoked"].is_boolean()) {
      return std::unexpected(InvalidArgument("revoked must be true or false"));
    }
    filter.revoked = body["revoked"].get<bool>();
  }
  if (body.contains("expiringWithinSeconds")) {
    const json& within = body["expiringWithinSeconds"];
    if (!within.is_number_integer() || within.get<int64_t>() < 0) {
      return std::unexpected(
          InvalidArgument("expiringWithinSeconds must be a non-negative integer"));
    }
    filter.expiring_before = clock.Now() + std::chrono::seconds(within.get<int64_t>());
  }
  return filter;
}

Response Failure(const Error& error, std::string_view tracking_id) {
  if (error.code() == ErrorCode::kNotFound) {
    return ErrorResponse(error_code::kCertificateNotFound, error.message(), tracking_id);
  }
  if (error.code() == ErrorCode::kInvalidArgument) {
    return ErrorResponse(error_code::kInvalidField, error.message(), tracking_id);
  }
  if (error.code() == ErrorCode::kInternal || error.code() == ErrorCode::kUnavailable) {
    spdlog::error("certificate request failed: {} trackingId={}", error.message(), tracking_id);
  }
  return ErrorResponseFor(error, tracking_id);
}

}  // namespace

bool CertificateApi::Matches(const Target& target) const {
  return target.SegmentIs(0, "certificates");
}

Response CertificateApi::Handle(const Request& request, const Target& target,
                                std::string_view tracking_id) {
  const auto& s = target.segments;
  bool revoke = s.size() == 2 && target.SegmentIs(1, "revoke");
  bool query = s.size() == 2 && target.SegmentIs(1, "query");
  if (s.size() != 2) {
    return ErrorResponse(error_code::kRouteNotFound, "no certificate route " + target.path,
                         tracking_id);
  }
  ServiceRight needed = revoke ? ServiceRight::kEnrollmentWrite : ServiceRight::kEnrollmentRead;
  auto actor = AuthorizeServiceRequest(auth_, request, target, needed, tracking_id);
  if (!actor) return std::move(actor.error());
  if (revoke || query) {
    if (request.method != "POST") {
      return ErrorResponse(error_code::kMethodNotAllowed, target.path + " takes POST", tracking_id);
    }
    return revoke ? Revoke(request, *actor, tracking_id) : Query(request, tracking_id);
  }
  if (request.method != "GET") {
    return ErrorResponse(error_code::kMethodNotAllowed, "a certificate takes GET", tracking_id);
  }
  return Show(s[1], tracking_id);
}

Response CertificateApi::Query(const Request& request, std::string_view tracking_id) {
  auto body = ParseJsonBody(request.body);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto filter = FilterFromJson(*body, clock_);
  if (!filter) return Failure(filter.error(), tracking_id);
  auto page = PageFrom(request);
  if (!page) return Failure(page.error(), tracking_id);
  auto result = registry_.QueryCertificates(*filter, *page);
  if (!result) return Failure(result.error(), tracking_id);
  return PageResponse(*result, "Certificate", [&](const registry::CertificateRecord& record) {
    return RecordToJson(record, clock_, /*with_pem=*/false);
  });
}

Response CertificateApi::Show(std::string_view thumbprint, std::string_view tracking_id) {
  registry::CertificateFilter filter;
  if (auto set = SetThumbprint(thumbprint, filter); !set) return Failure(set.error(), tracking_id);
  auto result = registry_.QueryCertificates(filter, {.max_items = 1});
  if (!result) return Failure(result.error(), tracking_id);
  if (result->items.empty()) {
    return ErrorResponse(error_code::kCertificateNotFound,
                         "no certificate with thumbprint " + std::string(thumbprint), tracking_id);
  }
  return JsonResponse(200, RecordToJson(result->items.front(), clock_, /*with_pem=*/true));
}

Response CertificateApi::Revoke(const Request& request, const std::string& actor,
                                std::string_view tracking_id) {
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  int selectors = 0;
  registry::CertificateFilter filter;
  filter.source = registry::CertificateSource::kIssued;
  std::string selected;
  for (const auto& [key, value] : body->items()) {
    if (key == "reason") continue;
    if (key != "serialNumber" && key != "thumbprint" && key != "deviceId") {
      return Failure(InvalidArgument("unknown field \"" + key + "\""), tracking_id);
    }
    if (!value.is_string()) return Failure(InvalidArgument(key + " must be a string"), tracking_id);
    ++selectors;
    std::string text = value.get<std::string>();
    selected = key + " " + text;
    Status set = Ok();
    if (key == "serialNumber") {
      auto serial = CanonicalSerial(text);
      if (serial) {
        filter.serial = *serial;
      } else {
        set = std::unexpected(serial.error());
      }
    } else if (key == "thumbprint") {
      set = SetThumbprint(text, filter);
    } else if (text.empty()) {
      set = std::unexpected(InvalidArgument("deviceId is empty"));
    } else {
      filter.device_id = text;
    }
    if (!set) return Failure(set.error(), tracking_id);
  }
  if (selectors != 1) {
    return Failure(InvalidArgument("name exactly one of serialNumber, thumbprint or deviceId"),
                   tracking_id);
  }
  int reason = pki::kUnspecified;
  if (body->contains("reason")) {
    const json& value = (*body)["reason"];
    auto parsed = value.is_string() ? pki::ParseCrlReason(value.get<std::string>())
                  : value.is_number_integer()
                      ? pki::ParseCrlReason(std::to_string(value.get<int64_t>()))
                      : Result<int>(std::unexpected(InvalidArgument("reason must be a string")));
    if (!parsed) return Failure(parsed.error(), tracking_id);
    reason = *parsed;
  }
  auto revoked = registry_.RevokeCertificates(filter, reason, registry::Actor{actor});
  if (!revoked) {
    if (revoked.error().code() == ErrorCode::kNotFound) {
      return ErrorResponse(error_code::kCertificateNotFound,
                           "no certificate devid issued matches " + selected, tracking_id);
    }
    return Failure(revoked.error(), tracking_id);
  }
  spdlog::info("revoked {} certificate(s) for {} reason={} by {}", revoked->size(), selected,
               pki::CrlReasonName(reason), actor);
  json items = json::array();
  for (const auto& record : *revoked) items.push_back(RecordToJson(record, clock_, false));
  return JsonResponse(200, {{"revoked", items}});
}

}  // namespace devid::api
