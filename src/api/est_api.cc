#include "api/est_api.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "api/text_response.h"
#include "ca/csr_policy.h"
#include "ca/recorded_issuance.h"
#include "ossl/base64.h"
#include "ossl/error.h"
#include "pki/csr.h"
#include "pki/pkcs7.h"
#include "pki/private_key.h"
#include "pki/sas_token.h"

namespace devid::api {
namespace {

Response ErrorText(const Error& error, std::string_view tracking_id) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return TextResponse(400, error.message());
    case ErrorCode::kUnauthenticated: {
      Response response = TextResponse(401, error.message());
      response.SetHeader("WWW-Authenticate", "SharedAccessSignature");
      return response;
    }
    case ErrorCode::kPermissionDenied:
      return TextResponse(403, error.message());
    case ErrorCode::kNotFound:
      return TextResponse(404, error.message());
    default:
      break;
  }
  spdlog::error("EST request {} failed: {}", tracking_id, error.message());
  int status = error.code() == ErrorCode::kUnavailable ? 503 : 500;
  return TextResponse(status, "internal error; tracking id " + std::string(tracking_id));
}

// AppendBase64Lines appends data base64-encoded in 64-character CRLF-terminated lines, the
// "base64" Content-Transfer-Encoding of RFC 2045 §6.8 that RFC 7030 §4.1.3 uses. out must have
// room reserved (Base64BodySize), so that appending never reallocates and leaves a copy of a key
// behind in freed memory.
void AppendBase64Lines(std::string_view data, std::string& out) {
  std::string base64 = ossl::Base64Encode(data);
  for (size_t i = 0; i < base64.size(); i += 64) {
    out.append(base64, i, 64);
    out += "\r\n";
  }
  OPENSSL_cleanse(base64.data(), base64.size());
}

// Base64BodySize is what AppendBase64Lines adds for size bytes.
size_t Base64BodySize(size_t size) {
  size_t base64 = 4 * ((size + 2) / 3);
  return base64 + 2 * ((base64 + 63) / 64);
}

// Pkcs7Response is the RFC 7030 §4.1.3 / §4.2.3 body: base64 of a certs-only SignedData.
Response Pkcs7Response(const std::string& der) {
  Response response;
  response.SetHeader("Content-Type", "application/pkcs7-mime; smime-type=certs-only");
  response.SetHeader("Content-Transfer-Encoding", "base64");
  response.body.reserve(Base64BodySize(der.size()));
  AppendBase64Lines(der, response.body);
  return response;
}

// kCsrAttrsDer is the CsrAttrs (RFC 7030 §4.5.2) devid asks for: the key and signature its own
// server-generated keys use, which every device key store supports.
//   SEQUENCE {
//     OBJECT IDENTIFIER ecdsa-with-SHA256 (1.2.840.10045.4.3.2)
//     SEQUENCE { OBJECT IDENTIFIER id-ecPublicKey (1.2.840.10045.2.1)
//                SET { OBJECT IDENTIFIER prime256v1 (1.2.840.10045.3.1.7) } } }
constexpr unsigned char kCsrAttrsDer[] = {0x30, 0x21, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                          0x04, 0x03, 0x02, 0x30, 0x15, 0x06, 0x07, 0x2a, 0x86,
                                          0x48, 0xce, 0x3d, 0x02, 0x01, 0x31, 0x0a, 0x06, 0x08,
                                          0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

Response CsrAttrsResponse() {
  Response response;
  response.SetHeader("Content-Type", "application/csrattrs");
  response.SetHeader("Content-Transfer-Encoding", "base64");
  std::string_view der(reinterpret_cast<const char*>(kCsrAttrsDer), sizeof(kCsrAttrsDer));
  response.body.reserve(Base64BodySize(der.size()));
  AppendBase64Lines(der, response.body);
  return response;
}

// Pkcs8Der returns key as a DER PrivateKeyInfo (RFC 5958); the caller cleanses it.
Result<std::string> Pkcs8Der(const pki::PrivateKey& key) {
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(key.get());
  unsigned char* der = nullptr;
  int len = info != nullptr ? i2d_PKCS8_PRIV_KEY_INFO(info, &der) : -1;
  PKCS8_PRIV_KEY_INFO_free(info);  // frees the private key octets cleansed
  if (len <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding a generated key as PKCS #8"));
  std::string out;
  out.reserve(static_cast<size_t>(len));
  out.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_clear_free(der, static_cast<size_t>(len));
  return out;
}

// ServerKeyGenResponse is RFC 7030 §4.4.2's multipart/mixed answer without additional encryption
// of the key: the private key as application/pkcs8, then the certificate as certs-only PKCS #7,
// each base64. The body holds the key, so the response is marked sensitive.
Result<Response> ServerKeyGenResponse(const pki::PrivateKey& key, const std::string& pkcs7_der) {
  // The boundary cannot occur in the parts: base64 lines never start with "--" (RFC 2046 §5.1.1).
  constexpr std::string_view kBoundary = "devid-est-serverkeygen";
  constexpr std::string_view kKeyHeaders =
      "Content-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  constexpr std::string_view kCertificateHeaders =
      "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  DEVID_ASSIGN_OR_RETURN(std::string pkcs8, Pkcs8Der(key));
  Response response;
  response.sensitive_body = true;
  response.SetHeader("Content-Type", "multipart/mixed; boundary=" + std::string(kBoundary));
  std::string& body = response.body;
  body.reserve(3 * (kBoundary.size() + 8) + kKeyHeaders.size() + kCertificateHeaders.size() +
               Base64BodySize(pkcs8.size()) + Base64BodySize(pkcs7_der.size()));
  body.append("--").append(kBoundary).append("\r\n").append(kKeyHeaders);
  AppendBase64Lines(pkcs8, body);
  OPENSSL_cleanse(pkcs8.data(), pkcs8.size());
  body.append("--").append(kBoundary).append("\r\n").append(kCertificateHeaders);
  AppendBase64Lines(pkcs7_der, body);
  body.append("--").append(kBoundary).append("--\r\n");
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
  // Discovery: every certificate a TLS client presents goes into the inventory, whatever it asks
  // for. Best effort: the inventory is not the authority on the request's outcome.
  std::optional<pki::Certificate> client_certificate;
  if (request.HasPeerCertificate()) {
    auto parsed = request.PeerLeaf();
    if (parsed) {
      if (auto observed = certificates_.Observe(*parsed); !observed) {
        spdlog::warn("EST request {}: recording the client certificate {}: {}", tracking_id,
                     parsed->Sha256Thumbprint(), observed.error().message());
      }
      client_certificate = std::move(*parsed);
    }
  }
  // RFC 7030 §3.2.2: /.well-known/est/<operation>; the optional CA label form is not offered.
  constexpr std::string_view kOperations =
      "cacerts, csrattrs, simpleenroll, simplereenroll, serverkeygen";
  if (target.segments.size() != 3) {
    return TextResponse(
        404, "no EST operation at " + target.path + " (" + std::string(kOperations) + ")");
  }
  const std::string& operation = target.segments[2];
  if (operation == "cacerts") {
    if (request.method != "GET") return TextResponse(405, "cacerts takes GET");
    return CaCerts(tracking_id);
  }
  if (operation == "csrattrs") {
    if (request.method != "GET") return TextResponse(405, "csrattrs takes GET");
    // RFC 7030 §4.5.2: rather than 204 (no preference), say what devid generates itself, so a
    // client that follows csrattrs makes a key every devid profile accepts.
    return CsrAttrsResponse();
  }
  Operation kind;
  if (operation == "simpleenroll") {
    kind = Operation::kEnroll;
  } else if (operation == "simplereenroll") {
    kind = Operation::kReenroll;
  } else if (operation == "serverkeygen") {
    kind = Operation::kServerKeyGen;
  } else {
    return TextResponse(404, "EST operation \"" + operation + "\" is not offered (" +
                                 std::string(kOperations) + ")");
  }
  if (request.method != "POST") return TextResponse(405, operation + " takes POST");
  return Enroll(kind, request, std::move(client_certificate), tracking_id);
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

Response EstApi::Enroll(Operation operation, const Request& request,
                        std::optional<pki::Certificate> client_certificate,
                        std::string_view tracking_id) {
  // Credentials first: without any, the request is not looked at.
  if (operation == Operation::kReenroll) {
    if (!client_certificate) {
      return ErrorText(Unauthenticated("simplereenroll needs the certificate being renewed as the "
                                       "TLS client certificate (RFC 7030 §4.2.2)"),
                       tracking_id);
    }
  } else if (request.HeaderValue("authorization").empty() && !client_certificate) {
    return ErrorText(Unauthenticated("EST enrollment needs the device's SAS token in "
                                     "Authorization or its devid certificate as the TLS client "
                                     "certificate"),
                     tracking_id);
  }
  // RFC 7030 §4.2.1 and §4.4.1: the request is application/pkcs10, base64-encoded DER.
  if (MediaType(request.HeaderValue("content-type")) != "application/pkcs10") {
    return TextResponse(415, "EST enrollment takes Content-Type: application/pkcs10");
  }
  auto der = DecodeBase64Body(request.body);
  if (!der) return ErrorText(der.error(), tracking_id);
  auto csr =
      pki::Csr::FromDer(std::string_view(reinterpret_cast<const char*>(der->data()), der->size()));
  if (!csr) return ErrorText(csr.error(), tracking_id);
  auto registration_id =
      ca::CheckDeviceCsr(*csr, operation == Operation::kServerKeyGen ? ca::CsrKeyUse::kIgnore
                                                                     : ca::CsrKeyUse::kCertify);
  if (!registration_id) return ErrorText(registration_id.error(), tracking_id);
  if (auto authorized =
          Authorize(operation, request, *csr, *registration_id, std::move(client_certificate));
      !authorized) {
    return ErrorText(authorized.error(), tracking_id);
  }

  std::optional<pki::PrivateKey> generated;
  const EVP_PKEY* public_key = csr->public_key();
  const X509_PUBKEY* public_key_info = csr->public_key_info();
  if (operation == Operation::kServerKeyGen) {
    auto key = pki::PrivateKey::GenerateEcP256();
    if (!key) return ErrorText(key.error(), tracking_id);
    generated = std::move(*key);
    public_key = generated->get();
    public_key_info = nullptr;  // the request's key is ignored (RFC 7030 §4.4.1)
  }
  // No certificate leaves unrecorded: the inventory is what revocation and renewal act on.
  std::string_view action = operation == Operation::kReenroll ? registry::kAuditCertificateRenew
                                                              : registry::kAuditCertificateIssue;
  auto certificate = ca::IssueRecorded(authority_, registry_, ca::kDeviceClientProfile,
                                       {.common_name = *registration_id,
                                        .public_key = public_key,
                                        .public_key_info = public_key_info},
                                       *registration_id, action, {"device:" + *registration_id});
  if (!certificate) return ErrorText(certificate.error(), tracking_id);
  spdlog::info("EST {} issued certificate {} to {}", action, certificate->SerialHex(),
               *registration_id);
  auto p7 = pki::CertsOnlyPkcs7Der({&*certificate});
  if (!p7) return ErrorText(p7.error(), tracking_id);
  if (operation != Operation::kServerKeyGen) return Pkcs7Response(*p7);
  auto response = ServerKeyGenResponse(*generated, *p7);
  if (!response) return ErrorText(response.error(), tracking_id);
  return std::move(*response);
}

Status EstApi::Authorize(Operation operation, const Request& request, const pki::Csr& csr,
                         const std::string& registration_id,
                         std::optional<pki::Certificate> client_certificate) {
  std::string_view authorization = request.HeaderValue("authorization");
  if (operation != Operation::kReenroll && !authorization.empty()) {
    std::shared_ptr<const std::string> id_scope = id_scope_.Get();
    // Say plainly when the token is for another device than the request's subject, rather than a
    // bare signature failure.
    if (auto token = pki::ParseSasToken(authorization); token) {
      if (!pki::SasResourceMatches(*token, *id_scope + "/registrations/" + registration_id)) {
        return std::unexpected(
            PermissionDenied("the request's subject CN \"" + registration_id +
                             "\" is not the registration ID the SAS token was issued for"));
      }
    }
    DEVID_TRY(verifier_.Verify(*id_scope, registration_id, authorization));
    return Ok();
  }
  DEVID_ASSIGN_OR_RETURN(ca::AuthenticatedCertificate client,
                         certificates_.Verify(std::move(*client_certificate)));
  if (client.registration_id != registration_id) {
    return std::unexpected(PermissionDenied(
        "the request's subject CN \"" + registration_id + "\" is not the registration ID \"" +
        client.registration_id + "\" of the TLS client certificate"));
  }
  // RFC 7030 §4.2.2: a re-enrollment request's subject is the certificate's, unchanged.
  if (operation == Operation::kReenroll &&
      X509_NAME_cmp(X509_REQ_get_subject_name(csr.get()),
                    X509_get_subject_name(client.certificate.get())) != 0) {
    return std::unexpected(PermissionDenied("the request's subject is not the subject " +
                                            client.certificate.SubjectName() +
                                            " of the certificate being renewed"));
  }
  return CheckEnrollmentEnabled(registration_id);
}

Status EstApi::CheckEnrollmentEnabled(const std::string& registration_id) {
  // A certificate outlives a disabled enrollment; the enrollment still decides, as it does for
  // the SAS token: the individual one when there is one, else the group the device registered
  // through.
  auto enrollment = registry_.GetEnrollment(registration_id);
  if (enrollment) {
    if (enrollment->settings.enabled) return Ok();
    return std::unexpected(
        PermissionDenied("the enrollment of " + registration_id + " is disabled"));
  }
  if (enrollment.error().code() != ErrorCode::kNotFound) return std::unexpected(enrollment.error());
  auto registration = registry_.GetRegistration(registration_id);
  if (!registration) {
    if (registration.error().code() == ErrorCode::kNotFound) return Ok();
    return std::unexpected(registration.error());
  }
  if (registration->enrollment_group_id.empty()) return Ok();
  auto group = registry_.GetEnrollmentGroup(registration->enrollment_group_id);
  if (!group) {
    if (group.error().code() == ErrorCode::kNotFound) return Ok();
    return std::unexpected(group.error());
  }
  if (group->settings.enabled) return Ok();
  return std::unexpected(PermissionDenied("the enrollment group " + group->enrollment_group_id +
                                          " of " + registration_id + " is disabled"));
}

}  // namespace devid::api
