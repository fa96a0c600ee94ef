#include "api/ca_certificate_api.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "api/error_codes.h"
#include "api/error_response.h"
#include "api/json_response.h"
#include "api/paging.h"
#include "base/hex.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "pki/certificate.h"

namespace devid::api {
namespace {

using nlohmann::json;

constexpr size_t kCodeBytes = 16;  // 32 hex digits: fits a CN (RFC 5280 ub-common-name 64)

std::optional<std::string> IfMatch(const Request& request) {
  std::string_view value = request.HeaderValue("if-match");
  if (value.empty() || value == "*") return std::nullopt;
  return std::string(value);
}

// CodeHash is how a code is stored and compared: lowercase hex SHA-256 of its text.
std::string CodeHash(std::string_view code) {
  auto digest = ossl::Sha256(std::span(reinterpret_cast<const uint8_t*>(code.data()), code.size()));
  return HexEncode(digest);
}

// CertificateField reads body's "certificate": PEM text, or base64 of DER or of PEM (DPS sends
// base64).
Result<pki::Certificate> CertificateField(const json& body) {
  if (!body.is_object() || !body.contains("certificate") || !body["certificate"].is_string()) {
    return std::unexpected(InvalidArgument("certificate: a PEM or base64 certificate is required"));
  }
  std::string text = body["certificate"].get<std::string>();
  if (text.find("-----BEGIN") != std::string::npos) return pki::Certificate::FromPem(text);
  std::erase_if(text, [](char c) { return c == '\n' || c == '\r' || c == ' '; });
  auto bytes = ossl::Base64Decode(text);
  if (!bytes) {
    return std::unexpected(InvalidArgument("certificate: neither PEM nor base64"));
  }
  std::string decoded(bytes->begin(), bytes->end());
  if (decoded.find("-----BEGIN") != std::string::npos) return pki::Certificate::FromPem(decoded);
  return pki::Certificate::FromDer(decoded);
}

// CheckIsCa refuses what cannot sign device certificates: RFC 5280 §4.2.1.9 basicConstraints
// cA TRUE, and keyCertSign when keyUsage is present (§4.2.1.3).
Status CheckIsCa(const pki::Certificate& certificate) {
  X509* x = certificate.get();
  if ((X509_get_extension_flags(x) & EXFLAG_CA) == 0) {
    return std::unexpected(
        InvalidArgument("certificate: " + certificate.SubjectName() +
                        " is not a CA certificate (basicConstraints cA is not TRUE)"));
  }
  if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) == 0) {
    return std::unexpected(InvalidArgument("certificate: " + certificate.SubjectName() +
                                           " has keyUsage without keyCertSign"));
  }
  return Ok();
}

json ToJson(const registry::CaCertificate& c, bool with_pem) {
  json out = {
      {"name", c.name},
      {"subject", c.subject},
      {"sha256Thumbprint", c.sha256_thumbprint},
      {"isVerified", c.verified},
      {"etag", c.etag},
      {"created", FormatUtc(c.created)},
      {"lastUpdated", FormatUtc(c.updated)},
  };
  if (!c.verification_code_hash.empty()) {
    out["verificationCodeExpires"] = FormatUtc(c.verification_code_expires);
  }
  auto certificate = pki::Certificate::FromDer(c.der);
  if (certificate) {
    out["issuer"] = certificate->IssuerName();
    out["notBefore"] = FormatUtc(certificate->NotBefore());
    out["notAfter"] = FormatUtc(certificate->NotAfter());
    if (with_pem) out["certificate"] = certificate->ToPem();
  }
  return out;
}

bool IsEtagMismatch(const Error& error) {
  return error.code() == ErrorCode::kFailedPrecondition &&
         error.message().ends_with("etag mismatch");
}

// Failure maps a store error; precondition_code is what a failed precondition other than an
// etag mismatch means on this route.
Response Failure(const Error& error, std::string_view tracking_id, int precondition_code = 0) {
  if (error.code() == ErrorCode::kNotFound) {
    return ErrorResponse(error_code::kCaCertificateNotFound, error.message(), tracking_id);
  }
  if (precondition_code != 0 && error.code() == ErrorCode::kFailedPrecondition &&
      !IsEtagMismatch(error)) {
    return ErrorResponse(precondition_code, error.message(), tracking_id);
  }
  if (error.code() == ErrorCode::kInternal || error.code() == ErrorCode::kUnavailable) {
    spdlog::error("CA certificate request failed: {} trackingId={}", error.message(), tracking_id);
  }
  return ErrorResponseFor(error, tracking_id);
}

}  // namespace

bool CaCertificateApi::Matches(const Target& target) const {
  return target.SegmentIs(0, "caCertificates");
}

Response CaCertificateApi::Handle(const Request& request, const Target& target,
                                  std::string_view tracking_id) {
  const auto& s = target.segments;
  bool collection = s.size() == 1 || (s.size() == 2 && s[1].empty());
  bool reads = request.method == "GET";
  auto actor = AuthorizeServiceRequest(
      auth_, request, target,
      reads ? ServiceRight::kEnrollmentRead : ServiceRight::kEnrollmentWrite, tracking_id);
  if (!actor) return std::move(actor.error());
  if (collection) {
    if (!reads) {
      return ErrorResponse(error_code::kMethodNotAllowed, "/caCertificates takes GET", tracking_id);
    }
    return List(request, tracking_id);
  }
  const std::string& name = s[1];
  if (s.size() == 3 && (target.SegmentIs(2, "verificationCode") || target.SegmentIs(2, "verify"))) {
    if (request.method != "POST") {
      return ErrorResponse(error_code::kMethodNotAllowed, target.path + " takes POST", tracking_id);
    }
    return target.SegmentIs(2, "verify") ? Verify(request, name, *actor, tracking_id)
                                         : GenerateCode(request, name, *actor, tracking_id);
  }
  if (s.size() != 2) {
    return ErrorResponse(error_code::kRouteNotFound, "no CA certificate route " + target.path,
                         tracking_id);
  }
  if (request.method == "GET") return Show(name, tracking_id);
  if (request.method == "PUT") return Upload(request, name, *actor, tracking_id);
  if (request.method == "DELETE") return Delete(request, name, *actor, tracking_id);
  return ErrorResponse(error_code::kMethodNotAllowed,
                       request.method + " is not allowed on " + target.path, tracking_id);
}

Response CaCertificateApi::List(const Request& request, std::string_view tracking_id) {
  auto page = PageFrom(request);
  if (!page) return ErrorResponse(error_code::kInvalidField, page.error().message(), tracking_id);
  auto result = registry_.QueryCaCertificates(*page);
  if (!result) return Failure(result.error(), tracking_id);
  return PageResponse(*result, "CaCertificate",
                      [](const registry::CaCertificate& c) { return ToJson(c, false); });
}

Response CaCertificateApi::Show(const std::string& name, std::string_view tracking_id) {
  auto stored = registry_.GetCaCertificate(name);
  if (!stored) return Failure(stored.error(), tracking_id);
  return JsonResponse(200, ToJson(*stored, /*with_pem=*/true));
}

Response CaCertificateApi::Upload(const Request& request, const std::string& name,
                                  const std::string& actor, std::string_view tracking_id) {
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto certificate = CertificateField(*body);
  if (!certificate) {
    return ErrorResponse(error_code::kInvalidCaCertificate,
                         "certificate: " + certificate.error().message(), tracking_id);
  }
  if (auto ca = CheckIsCa(*certificate); !ca) {
    return ErrorResponse(error_code::kInvalidCaCertificate, ca.error().message(), tracking_id);
  }
  registry::CaCertificate upload;
  upload.name = name;
  upload.der = certificate->ToDer();
  upload.sha256_thumbprint = certificate->Sha256Thumbprint();
  upload.subject = certificate->SubjectName();
  auto stored = registry_.PutCaCertificate(upload, IfMatch(request), registry::Actor{actor});
  if (!stored) return Failure(stored.error(), tracking_id);
  spdlog::info("CA certificate {} ({}) uploaded by {}, unverified", name, upload.subject, actor);
  return JsonResponse(200, ToJson(*stored, /*with_pem=*/false));
}

Response CaCertificateApi::Delete(const Request& request, const std::string& name,
                                  const std::string& actor, std::string_view tracking_id) {
  auto deleted = registry_.DeleteCaCertificate(name, IfMatch(request), registry::Actor{actor});
  if (!deleted) return Failure(deleted.error(), tracking_id, error_code::kCaCertificateInUse);
  Response response;
  response.status = 204;
  return response;
}

Response CaCertificateApi::GenerateCode(const Request& request, const std::string& name,
                                        const std::string& actor, std::string_view tracking_id) {
  std::string code = HexEncode(random_.Bytes(kCodeBytes), /*uppercase=*/true);
  auto stored = registry_.SetCaVerificationCode(name, CodeHash(code), clock_.Now() + kCodeLifetime,
                                                IfMatch(request), registry::Actor{actor});
  if (!stored) return Failure(stored.error(), tracking_id);
  json out = ToJson(*stored, /*with_pem=*/false);
  out["verificationCode"] = code;
  return JsonResponse(200, out);
}

Response CaCertificateApi::Verify(const Request& request, const std::string& name,
                                  const std::string& actor, std::string_view tracking_id) {
  auto body = ParseJsonBody(request.body, /*empty_is_object=*/false);
  if (!body || !body->is_object()) {
    return ErrorResponse(error_code::kInvalidJson, "the body must be a JSON object", tracking_id);
  }
  auto stored = registry_.GetCaCertificate(name);
  if (!stored) return Failure(stored.error(), tracking_id);
  if (auto etag = IfMatch(request); etag && *etag != stored->etag) {
    return ErrorResponse(error_code::kEtagMismatch,
                         "verifying CA certificate \"" + name + "\": etag mismatch", tracking_id);
  }
  auto proof = CertificateField(*body);
  if (!proof) {
    return ErrorResponse(error_code::kProofOfPossessionFailed,
                         "certificate: " + proof.error().message(), tracking_id);
  }
  auto ca = pki::Certificate::FromDer(stored->der);
  if (!ca) return Failure(Internal("a stored CA certificate does not parse"), tracking_id);
  const std::string prefix = "verifying CA certificate \"" + name + "\": ";
  auto now = clock_.Now();
  // The code first: it is the one-time secret. Compare its hash in constant time.
  std::string presented = CodeHash(proof->SubjectCommonName());
  const std::string& pending = stored->verification_code_hash;
  if (pending.empty()) {
    return ErrorResponse(error_code::kVerificationCodeInvalid,
                         prefix +
                             "no verification code is pending (never generated, or already "
                             "used)",
                         tracking_id);
  }
  if (!ossl::ConstantTimeEquals(
          std::span(reinterpret_cast<const uint8_t*>(presented.data()), presented.size()),
          std::span(reinterpret_cast<const uint8_t*>(pending.data()), pending.size()))) {
    return ErrorResponse(error_code::kVerificationCodeInvalid,
                         prefix + "the subject CN is not the pending verification code",
                         tracking_id);
  }
  if (stored->verification_code_expires <= now) {
    return ErrorResponse(error_code::kVerificationCodeInvalid,
                         prefix + "the verification code has expired; generate a new one",
                         tracking_id);
  }
  // Proof of possession: only the holder of the CA's private key can sign a certificate over the
  // code (X509_verify checks the issuer signature with the CA's public key).
  if (X509_verify(proof->get(), X509_get0_pubkey(ca->get())) != 1) {
    ERR_clear_error();
    return ErrorResponse(error_code::kProofOfPossessionFailed,
                         prefix + "the verification certificate is not signed by this CA's key",
                         tracking_id);
  }
  if (proof->NotBefore() > now || proof->NotAfter() <= now) {
    return ErrorResponse(error_code::kProofOfPossessionFailed,
                         prefix + "the verification certificate is not valid now (" +
                             FormatUtc(proof->NotBefore()) + " to " + FormatUtc(proof->NotAfter()) +
                             ")",
                         tracking_id);
  }
  auto verified = registry_.VerifyCaCertificate(name, stored->sha256_thumbprint, presented,
                                                registry::Actor{actor});
  if (!verified) {
    return Failure(verified.error(), tracking_id, error_code::kVerificationCodeInvalid);
  }
  spdlog::info("CA certificate {} ({}) verified by {}", name, verified->subject, actor);
  return JsonResponse(200, ToJson(*verified, /*with_pem=*/false));
}

}  // namespace devid::api
