#include "devid/est_client.h"

#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "ossl/base64.h"
#include "ossl/error.h"
#include "ossl/unique_ptr.h"
#include "pki/csr.h"
#include "pki/pkcs7.h"
#include "sdk/device_sas_token.h"
#include "sdk/https_client.h"
#include "sdk/status_error.h"

namespace devid::sdk {
namespace {

constexpr std::string_view kEstPrefix = "/.well-known/est/";
// A refusal's text/plain body is quoted to the technician, bounded so that a misbehaving server
// cannot flood the terminal or the log.
constexpr size_t kMaxQuotedBody = 300;

// ServerWords returns body as one printable line of at most kMaxQuotedBody characters.
std::string ServerWords(std::string_view body) {
  std::string words;
  for (char c : body.substr(0, kMaxQuotedBody)) {
    unsigned char u = static_cast<unsigned char>(c);
    words += (std::isprint(u) || u >= 0x80) ? c : ' ';
  }
  size_t first = words.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return words.substr(first, words.find_last_not_of(' ') - first + 1);
}

// RefusalError turns an EST error answer (RFC 7030 §4.2.3: text/plain for a person) into an
// Error whose code says what the device can do about it.
Error RefusalError(const HttpResponse& response, std::string_view action) {
  std::string text =
      std::string(action) + ": the server refused (HTTP " + std::to_string(response.status) + ")";
  if (std::string words = ServerWords(response.body); !words.empty()) text += ": " + words;
  return StatusError(response.status, std::move(text));
}

// CertsOnly reads a 200 answer's certs-only PKCS #7, base64 with line breaks (RFC 7030 §4.1.3,
// §4.2.3).
Result<std::vector<pki::Certificate>> CertsOnly(const HttpResponse& response,
                                                std::string_view action) {
  if (response.status != 200) return std::unexpected(RefusalError(response, action));
  std::string content_type(response.HeaderValue("content-type"));
  std::transform(content_type.begin(), content_type.end(), content_type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!content_type.starts_with("application/pkcs7-mime")) {
    return std::unexpected(FailedPrecondition(
        std::string(action) + ": the server answered " +
        (content_type.empty() ? std::string("without a Content-Type") : content_type) +
        " instead of application/pkcs7-mime (RFC 7030 §4.2.3)"));
  }
  std::string compact;
  compact.reserve(response.body.size());
  for (char c : response.body) {
    if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
  }
  if (auto der = ossl::Base64Decode(compact)) {
    auto certificates = pki::CertificatesFromPkcs7Der(
        std::string_view(reinterpret_cast<const char*>(der->data()), der->size()));
    if (certificates && !certificates->empty()) return certificates;
  }
  return std::unexpected(FailedPrecondition(
      std::string(action) +
      ": the server's answer is not a base64 certs-only PKCS #7 holding a certificate"));
}

// Connect opens the TLS connection for one operation.
Result<HttpsClient> Connect(const EstOptions& options, ClientTlsOptions tls,
                            std::string_view action) {
  if (options.trust_bundle_pem.empty()) {
    return std::unexpected(
        InvalidArgument(std::string(action) + ": a trust bundle is required to verify the server"));
  }
  if (options.host.empty()) {
    return std::unexpected(InvalidArgument(std::string(action) + ": the endpoint has no host"));
  }
  tls.trust_bundle_pem = options.trust_bundle_pem;
  tls.server_name = options.server_name;
  tls.timeout = options.timeout;
  auto client = HttpsClient::Connect(options.host, options.port, std::move(tls));
  if (!client) return std::unexpected(client.error().WithContext(action));
  return client;
}

// Enroll posts a request for subject signed through key to operation (RFC 7030 §4.2.1: base64
// DER PKCS #10) and returns the certificate the answer holds, checked to certify key's public key
// for subject: a server that certifies anything else is not renewing this device.
Result<pki::Certificate> Enroll(HttpsClient& client, std::string_view operation,
                                const X509_NAME* subject, const keys::Key& key,
                                std::vector<HttpHeader> headers, std::string_view action) {
  auto csr = pki::Csr::Sign(subject, key);
  if (!csr) return std::unexpected(csr.error().WithContext(action));
  headers.emplace_back("Content-Type", "application/pkcs10");
  headers.emplace_back("Content-Transfer-Encoding", "base64");
  auto response = client.Send("POST", std::string(kEstPrefix) + std::string(operation), headers,
                              ossl::Base64Encode(csr->ToDer()));
  if (!response) return std::unexpected(response.error().WithContext(action));
  DEVID_ASSIGN_OR_RETURN(std::vector<pki::Certificate> certificates, CertsOnly(*response, action));
  pki::Certificate& issued = certificates.front();
  if (EVP_PKEY_eq(X509_get0_pubkey(issued.get()), key.public_key()) != 1) {
    return std::unexpected(FailedPrecondition(
        std::string(action) + ": the server returned a certificate for another key than " +
        key.uri()));
  }
  if (X509_NAME_cmp(X509_get_subject_name(issued.get()), subject) != 0) {
    return std::unexpected(FailedPrecondition(std::string(action) +
                                              ": the server returned a certificate for " +
                                              issued.SubjectName() + ", not this device"));
  }
  return std::move(issued);
}

}  // namespace

EstClient::EstClient(EstOptions options) : options_(std::move(options)) {}

Result<std::vector<pki::Certificate>> EstClient::CaCerts() {
  constexpr std::string_view kAction = "reading the CA certificates through EST";
  DEVID_ASSIGN_OR_RETURN(HttpsClient client, Connect(options_, {}, kAction));
  auto response = client.Send("GET", std::string(kEstPrefix) + "cacerts");
  if (!response) return std::unexpected(response.error().WithContext(kAction));
  return CertsOnly(*response, kAction);
}

Result<pki::Certificate> EstClient::SimpleEnroll(const keys::Key& key,
                                                 std::string_view registration_id,
                                                 std::string_view sas_token) {
  std::string action = "enrolling " + std::string(registration_id) + " through EST";
  if (registration_id.empty() || sas_token.empty()) {
    return std::unexpected(
        InvalidArgument(action + ": a registration ID and the device's SAS token are required"));
  }
  ossl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (!subject ||
      X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(registration_id.data()),
                                 static_cast<int>(registration_id.size()), -1, 0) != 1) {
    return std::unexpected(ossl::ErrorFromQueue(action + ": building the subject"));
  }
  DEVID_ASSIGN_OR_RETURN(HttpsClient client, Connect(options_, {}, action));
  return Enroll(client, "simpleenroll", subject.get(), key,
                {{"Authorization", std::string(sas_token)}}, action);
}

Result<pki::Certificate> EstClient::SimpleEnroll(const keys::Key& key, std::string_view id_scope,
                                                 std::string_view registration_id,
                                                 SasCredential& sas) {
  if (id_scope.empty()) {
    return std::unexpected(InvalidArgument("enrolling " + std::string(registration_id) +
                                           " through EST: the service's ID scope is required"));
  }
  auto token = DeviceSasToken(sas, std::string(id_scope), std::string(registration_id));
  if (!token) {
    return std::unexpected(token.error().WithContext("signing the SAS token for enrolling " +
                                                     std::string(registration_id)));
  }
  return SimpleEnroll(key, registration_id, *token);
}

Result<pki::Certificate> EstClient::SimpleReenroll(const pki::Certificate& current,
                                                   std::shared_ptr<const keys::Key> current_key,
                                                   const keys::Key& new_key) {
  std::string action =
      "renewing " + current.SubjectName() + " (serial " + current.SerialHex() + ") through EST";
  if (!current_key) {
    return std::unexpected(InvalidArgument(action + ": the current certificate's key is required"));
  }
  if (EVP_PKEY_eq(X509_get0_pubkey(current.get()), current_key->public_key()) != 1) {
    return std::unexpected(InvalidArgument(action + ": the key " + current_key->uri() +
                                           " is not the certificate's key"));
  }
  // RFC 7030 §4.2.2: the certificate being renewed authenticates the request, as the TLS client
  // certificate, and its subject is the request's.
  ClientTlsOptions tls;
  tls.certificate_chain_pem = current.ToPem();
  tls.client_key = std::move(current_key);
  DEVID_ASSIGN_OR_RETURN(HttpsClient client, Connect(options_, std::move(tls), action));
  return Enroll(client, "simplereenroll", X509_get_subject_name(current.get()), new_key, {},
                action);
}

}  // namespace devid::sdk
