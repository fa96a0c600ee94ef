#include "api/est_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "ossl/base64.h"
#include "pki/csr.h"
#include "pki/pkcs7.h"
#include "pki/sas_token.h"

namespace devid::api {
namespace {

Response Text(int status, std::string message) {
  Response response;
  response.status = status;
  response.SetHeader("Content-Type", "text/plain; charset=utf-8");
  response.body = std::move(message) + "\n";
  return response;
}

Response ErrorText(const Error& error, std::string_view tracking_id) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return Text(400, error.message());
    case ErrorCode::kUnauthenticated: {
      Response response = Text(401, error.message());
      response.SetHeader("WWW-Authenticate", "SharedAccessSignature");
      return response;
    }
    case ErrorCode::kPermissionDenied:
      return Text(403, error.message());
    case ErrorCode::kNotFound:
      return Text(404, error.message());
    default:
      break;
  }
  spdlog::error("EST request {} failed: {}", tracking_id, error.message());
  int status = error.code() == ErrorCode::kUnavailable ? 503 : 500;
  return Text(status, "internal error; tracking id " + std::string(tracking_id));
}

// Pkcs7Response is the RFC 7030 §4.1.3 / §4.2.3 body: base64 of a certs-only SignedData.
Response Pkcs7Response(const std::string& der) {
  Response response;
  response.SetHeader("Content-Type", "application/pkcs7-mime; smime-type=certs-only");
  response.SetHeader("Content-Transfer-Encoding", "base64");
  std::string base64 = ossl::Base64Encode(der);
  for (size_t i = 0; i < base64.size(); i += 64) response.body += base64.substr(i, 64) + "\r\n";
  return response;
}

// MediaType returns the Content-Type's type/subtype, lowercase, without parameters.
std::string MediaType(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  type.erase(
      std::remove_if(type.begin(), type.end(), [](unsigned char c) { return std::isspace(c); }),
      type.end());
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type;
}

// DecodeBase64Body decodes an EST body: base64 with optional line breaks (RFC 7030 §4.2.1 uses
// the "base64" Content-Transfer-Encoding of RFC 2045 §6.8, which wraps lines).
Result<std::vector<uint8_t>> DecodeBase64Body(std::string_view body) {
  std::string compact;
  compact.reserve(body.size());
  for (char c : body) {
    if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
  }
  auto decoded = ossl::Base64Decode(compact);
  if (!decoded) return std::unexpected(InvalidArgument("the body is not base64 PKCS #10"));
  return decoded;
}

}  // namespace

bool EstApi::Matches(const Target& target) const {
  return target.segments.size() >= 2 && target.segments[0] == ".well-known" &&
         target.segments[1] == "est";
}

Response EstApi::Handle(const Request& request, const Target& target,
                        std::string_view tracking_id) {
  // RFC 7030 §3.2.2: /.well-known/est/<operation>; the optional CA label form is not offered.
  if (target.segments.size() != 3) {
    return Text(404, "no EST operation at " + target.path + " (cacerts, csrattrs, simpleenroll)");
  }
  const std::string& operation = target.segments[2];
  if (operation == "cacerts") {
    if (request.method != "GET") return Text(405, "cacerts takes GET");
    return CaCerts(tracking_id);
  }
  if (operation == "csrattrs") {
    if (request.method != "GET") return Text(405, "csrattrs takes GET");
    // RFC 7030 §4.5.2: 204 when the server asks for no particular attributes. The profile sets
    // every extension; the subject CN must be the registration ID.
    Response response;
    response.status = 204;
    return response;
  }
  if (operation == "simpleenroll") {
    if (request.method != "POST") return Text(405, "simpleenroll takes POST");
    return SimpleEnroll(request, tracking_id);
  }
  return Text(
      404, "EST operation \"" + operation + "\" is not offered (cacerts, csrattrs, simpleenroll)");
}

Response EstApi::CaCerts(std::string_view tracking_id) {
  // RFC 7030 §4.1.3: the current CA certificates; issuing CAs newest first, then the roots.
  std::vector<const pki::Certificate*> certificates;
  for (auto it = authority_.issuers().rbegin(); it != authority_.issuers().rend(); ++it) {
    certificates.push_back(&it->certificate);
  }
  for (const pki::Certificate& root : authority_.roots()) certificates.push_back(&root);
  auto der = pki::CertsOnlyPkcs7Der(certificates);
  if (!der) return ErrorText(der.error(), tracking_id);
  return Pkcs7Response(*der);
}

Response EstApi::SimpleEnroll(const Request& request, std::string_view tracking_id) {
  std::string_view authorization = request.HeaderValue("authorization");
  if (authorization.empty()) {
    return ErrorText(Unauthenticated("EST enrollment needs the device's SAS token in "
                                     "Authorization"),
                     tracking_id);
  }
  // RFC 7030 §4.2.1: the request is application/pkcs10, base64-encoded DER.
  if (MediaType(request.HeaderValue("content-type")) != "application/pkcs10") {
    return Text(415, "simpleenroll takes Content-Type: application/pkcs10");
  }
  auto der = DecodeBase64Body(request.body);
  if (!der) return ErrorText(der.error(), tracking_id);
  auto csr =
      pki::Csr::FromDer(std::string_view(reinterpret_cast<const char*>(der->data()), der->size()));
  if (!csr) return ErrorText(csr.error(), tracking_id);
  // Proof of possession: the request is signed by the key it certifies (RFC 7030 §3.4).
  if (auto pop = csr->VerifySignature(); !pop) return ErrorText(pop.error(), tracking_id);
  if (auto attributes = csr->CheckAttributes(); !attributes) {
    return ErrorText(attributes.error(), tracking_id);
  }
  std::string registration_id = csr->SubjectCommonName();
  if (registration_id.empty()) {
    return Text(400, "the request's subject has no CN; it must be the registration ID");
  }
  // Say plainly when the token is for another device than the request's subject, rather than a
  // bare signature failure.
  if (auto token = pki::ParseSasToken(authorization); token) {
    if (!pki::SasResourceMatches(*token, id_scope_ + "/registrations/" + registration_id)) {
      return Text(403, "the request's subject CN \"" + registration_id +
                           "\" is not the registration ID the SAS token was issued for");
    }
  }
  auto device = verifier_.Verify(id_scope_, registration_id, authorization);
  if (!device) return ErrorText(device.error(), tracking_id);

  auto certificate =
      authority_.Issue(ca::kDeviceClientProfile,
                       {.common_name = device->registration_id, .public_key = csr->public_key()});
  if (!certificate) return ErrorText(certificate.error(), tracking_id);
  spdlog::info("EST issued certificate {} to {}", certificate->SerialHex(),
               device->registration_id);
  auto p7 = pki::CertsOnlyPkcs7Der({&*certificate});
  if (!p7) return ErrorText(p7.error(), tracking_id);
  return Pkcs7Response(*p7);
}

}  // namespace devid::api
