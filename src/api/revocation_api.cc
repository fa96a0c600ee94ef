#include "api/revocation_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "api/text_response.h"
#include "base/url.h"
#include "ossl/base64.h"

namespace devid::api {
namespace {

using std::chrono::system_clock;

// kMaxAge caps how long an HTTP cache may keep a CRL or OCSP response without asking again:
// devid publishes a new one as soon as a certificate is revoked, and a cache should pick it up
// within minutes even though the document itself stays valid longer.
constexpr std::chrono::seconds kMaxAge{300};

// HttpDate renders t as an IMF-fixdate (RFC 9110 §5.6.7). Each thread keeps its last two
// answers: a busy responder formats the same two seconds (now and a document's date) thousands
// of times in a row.
std::string HttpDate(system_clock::time_point t) {
  struct Formatted {
    std::time_t seconds = -1;
    std::string text;
  };
  thread_local std::array<Formatted, 2> recent;
  std::time_t seconds = system_clock::to_time_t(t);
  for (const Formatted& f : recent) {
    if (f.seconds == seconds) return f.text;
  }
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  recent[1] = std::move(recent[0]);
  recent[0] = {seconds, buffer};
  return buffer;
}

// SetCaching labels a document valid until next_update, made at made: caches may keep it
// kMaxAge at most, and never past next_update (RFC 5019 §6.2 for OCSP).
void SetCaching(Response& response, system_clock::time_point now, system_clock::time_point made,
                system_clock::time_point next_update, const std::string& etag) {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(next_update - now);
  auto max_age = std::clamp(left, std::chrono::seconds(0), kMaxAge);
  response.SetHeader("Cache-Control", "max-age=" + std::to_string(max_age.count()) +
                                          ", public, no-transform, must-revalidate");
  response.SetHeader("Expires", HttpDate(now + max_age));
  response.SetHeader("Last-Modified", HttpDate(made));
  response.SetHeader("ETag", "\"" + etag + "\"");
}

// Strip removes suffix from name, or returns "" when name does not end with it.
std::string Strip(const std::string& name, std::string_view suffix) {
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return "";
  std::string key_id = name.substr(0, name.size() - suffix.size());
  std::transform(key_id.begin(), key_id.end(), key_id.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return key_id;
}

// IsOcspPost tells whether request is an OCSP request by POST (RFC 6960 Appendix A.1).
bool IsOcspPost(const Request& request, const Target& target) {
  const auto& s = target.segments;
  return request.method == "POST" && (s.size() == 1 || (s.size() == 2 && s[1].empty()));
}

// HasOcspContentType tells whether a POST's Content-Type, when it has one, is an OCSP request's.
bool HasOcspContentType(const Request& request) {
  std::string_view type = request.HeaderValue("content-type");
  return type.empty() || type.substr(0, type.find(';')) == "application/ocsp-request";
}

// IsOcspGet tells whether request is an OCSP request by GET, the request appended to the URL.
bool IsOcspGet(const Request& request, const Target& target) {
  return request.method == "GET" && target.segments.size() >= 2;
}

// OcspGetRequestDer decodes the request of an OCSP GET, or returns "" when it does not decode
// (answered as any undecodable request: malformedRequest).
std::string OcspGetRequestDer(const Target& target) {
  // The base64 may hold '/', escaped or not: decode the raw path after "/ocsp/" as a whole.
  std::string_view encoded =
      std::string_view(target.path).substr(std::string_view("/ocsp/").size());
  auto base64 = PercentDecode(encoded);
  if (!base64) return "";
  auto der = ossl::Base64Decode(*base64);
  if (!der) return "";
  return std::string(reinterpret_cast<const char*>(der->data()), der->size());
}

}  // namespace

bool RevocationApi::Matches(const Target& target) const {
  if (target.segments.empty()) return false;
  const std::string& first = target.segments[0];
  return first == "crl" || first == "ca" || first == "ocsp";
}

Response RevocationApi::Handle(const Request& request, const Target& target,
                               std::string_view tracking_id) {
  const auto& s = target.segments;
  if (s[0] == "ocsp") {
    if (IsOcspPost(request, target)) {
      if (!HasOcspContentType(request)) {
        return TextResponse(415, "OCSP requests are Content-Type: application/ocsp-request");
      }
      return Ocsp(request.body, tracking_id);
    }
    if (IsOcspGet(request, target)) return Ocsp(OcspGetRequestDer(target), tracking_id);
    return TextResponse(405, "OCSP takes POST /ocsp or GET /ocsp/<base64 request>");
  }
  if (s.size() != 2) return TextResponse(404, "nothing at " + target.path);
  if (request.method != "GET") return TextResponse(405, target.path + " takes GET");
  if (s[0] == "crl") return Crl(request, s[1], tracking_id);
  return CaCertificate(s[1]);
}

Response RevocationApi::Crl(const Request& request, const std::string& name,
                            std::string_view tracking_id) {
  std::string key_id = Strip(name, ".crl");
  if (key_id.empty()) return TextResponse(404, "CRLs are at /crl/<issuing CA key ID>.crl");
  auto crl = crls_.Crl(key_id);
  if (!crl) {
    if (crl.error().code() == ErrorCode::kNotFound) return TextResponse(404, crl.error().message());
    spdlog::error("CRL request {} failed: {}", tracking_id, crl.error().message());
    return TextResponse(crl.error().code() == ErrorCode::kUnavailable ? 503 : 500,
                        "internal error; tracking id " + std::string(tracking_id));
  }
  Response response;
  SetCaching(response, clock_.Now(), (*crl)->this_update, (*crl)->next_update, (*crl)->etag);
  if (request.HeaderValue("if-none-match") == "\"" + (*crl)->etag + "\"") {
    response.status = 304;
    return response;
  }
  response.SetHeader("Content-Type", "application/pkix-crl");
  response.body = (*crl)->der;
  return response;
}

Response RevocationApi::CaCertificate(const std::string& name) {
  std::string key_id = Strip(name, ".cer");
  if (key_id.empty()) return TextResponse(404, "CA certificates are at /ca/<key ID>.cer");
  const pki::Certificate* found = nullptr;
  for (const ca::IssuingCa& issuer : authority_.issuers()) {
    if (ca::KeyIdHex(issuer.certificate) == key_id) found = &issuer.certificate;
  }
  for (const pki::Certificate& root : authority_.roots()) {
    if (ca::KeyIdHex(root) == key_id) found = &root;
  }
  if (found == nullptr) return TextResponse(404, "no CA certificate has key ID " + key_id);
  Response response;
  response.SetHeader("Content-Type", "application/pkix-cert");
  // A CA certificate does not change under its key ID; a day's caching is safe.
  response.SetHeader("Cache-Control", "max-age=86400, public");
  response.body = found->ToDer();
  return response;
}

std::optional<Response> RevocationApi::TryHandleNow(const Request& request,
                                                    const Target& target) {
  if (target.segments[0] != "ocsp") return std::nullopt;
  std::optional<ca::OcspAnswer> answer;
  if (IsOcspPost(request, target) && HasOcspContentType(request)) {
    answer = ocsp_.RespondCached(request.body);
  } else if (IsOcspGet(request, target)) {
    answer = ocsp_.RespondCached(OcspGetRequestDer(target));
  }
  if (!answer) return std::nullopt;
  return OcspResponse(std::move(*answer), "");
}

Response RevocationApi::Ocsp(std::string_view request_der, std::string_view tracking_id) {
  return OcspResponse(ocsp_.Respond(request_der), tracking_id);
}

Response RevocationApi::OcspResponse(ca::OcspAnswer answer, std::string_view tracking_id) {
  Response response;
  response.SetHeader("Content-Type", "application/ocsp-response");
  switch (answer.status) {
    case ca::OcspResponseStatus::kSuccessful:
      SetCaching(response, clock_.Now(), answer.produced_at, answer.next_update, answer.etag);
      break;
    case ca::OcspResponseStatus::kInternalError:
    case ca::OcspResponseStatus::kTryLater:
      spdlog::error("OCSP request {} failed: {}", tracking_id, answer.error);
      response.SetHeader("Cache-Control", "no-store");
      break;
    default:
      spdlog::debug("OCSP request {} refused: {}", tracking_id, answer.error);
      response.SetHeader("Cache-Control", "no-store");
      break;
  }
  response.body = std::move(answer.der);
  return response;
}

}  // namespace devid::api
