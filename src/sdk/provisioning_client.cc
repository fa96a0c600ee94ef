#include "devid/provisioning_client.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <optional>
#include <span>
#include <thread>

#include "base/clock.h"
#include "base/url.h"
#include "sdk/https_client.h"
#include "ossl/base64.h"
#include "pki/certificate.h"
#include "pki/csr.h"
#include "sdk/device_sas_token.h"
#include "sdk/status_error.h"
#include "tpm/public_area.h"

namespace devid::sdk {
namespace {

using nlohmann::json;

constexpr int kDefaultRetryAfterSeconds = 2;     // the Node SDK's default without Retry-After
constexpr int kMaxRetryAfterSeconds = 60;

// ValidId checks an ID scope or registration ID against DPS's alphabet (lowercase alphanumerics
// and - . _ :, at most 128), so that it cannot change the request path.
Status ValidId(std::string_view id, std::string_view what) {
  bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == ':';
  });
  if (!ok) {
    return std::unexpected(InvalidArgument(std::string(what) + " \"" + std::string(id) +
                                           "\" must be 1-128 of a-z 0-9 - . _ :"));
  }
  return Ok();
}

// ServiceError turns a DPS error answer (protocol notes §1.3) into an Error with the server's
// message and errorCode.
Error ServiceError(const HttpResponse& response, std::string_view action) {
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string text =
      std::string(action) + ": the service answered HTTP " + std::to_string(response.status);
  if (body.is_object()) {
    if (body.contains("errorCode") && body["errorCode"].is_number_integer()) {
      text += " (errorCode " + std::to_string(body["errorCode"].get<int64_t>()) + ")";
    }
    if (body.contains("message") && body["message"].is_string()) {
      text += ": " + body["message"].get<std::string>();
    }
  }
  // 429 is DPS throttling (protocol notes §1.3): the caller may try again later.
  if (response.status == 429) return ResourceExhausted(std::move(text));
  return StatusError(response.status, std::move(text));
}

int RetryAfterSeconds(const HttpResponse& response) {
  for (const auto& [name, value] : response.headers) {
    if (name != "retry-after") continue;
    int seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && end == value.data() + value.size() && seconds >= 0) {
      return std::min(seconds, kMaxRetryAfterSeconds);
    }
  }
  return kDefaultRetryAfterSeconds;
}

// QuoteEvidence answers a measured-boot challenge (devid extension, docs/device-provisioning.md):
// activating the AK credential proves the AK sits in the TPM that holds the EK, and the quote of
// pcrs carries the challenge's nonce, so it is fresh. Returns the fields the second PUT adds to
// its `tpm` object.
Result<json> QuoteEvidence(TpmCredential& tpm, const json& challenge,
                           std::span<const uint32_t> pcrs, const std::string& action) {
  auto decode = [&](const char* name) -> Result<std::vector<uint8_t>> {
    auto field = challenge.find(name);
    std::optional<std::vector<uint8_t>> bytes;
    if (field != challenge.end() && field->is_string()) {
      if (auto decoded = ossl::Base64Decode(field->get<std::string>())) bytes = std::move(*decoded);
    }
    if (!bytes || bytes->empty()) {
      return std::unexpected(InvalidArgument(action + ": the attestation challenge's " + name +
                                             " is missing or not base64"));
    }
    return std::move(*bytes);
  };
  if (!challenge.is_object()) {
    return std::unexpected(
        InvalidArgument(action + ": the attestation challenge is not an object"));
  }
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> nonce, decode("nonce"));
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> credential, decode("attestationKeyCredential"));
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> secret,
                         tpm.ActivateAttestationKeyCredential(credential));
  std::string activated = ossl::Base64Encode(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  DEVID_ASSIGN_OR_RETURN(TpmQuote quote, tpm.Quote(pcrs, nonce));
  return json{{"attestationKeyCredential", std::move(activated)},
              {"quote", ossl::Base64Encode(quote.attest)},
              {"quoteSignature", ossl::Base64Encode(quote.signature)}};
}

// Registration is one device's conversation with the service on one kept-alive connection.
class Registration {
 public:
  // Start connects; with x509, its chain and key are the TLS client certificate.
  static Result<Registration> Start(const ProvisioningOptions& options,
                                    std::string registration_id,
                                    const X509Credential* x509 = nullptr) {
    if (options.trust_bundle_pem.empty()) {
      return std::unexpected(InvalidArgument("a trust bundle is required to verify the server"));
    }
    if (options.host.empty()) return std::unexpected(InvalidArgument("the endpoint has no host"));
    DEVID_TRY(ValidId(options.id_scope, "ID scope"));
    DEVID_TRY(ValidId(registration_id, "registration ID"));
    ClientTlsOptions tls;
    tls.trust_bundle_pem = options.trust_bundle_pem;
    tls.server_name = options.server_name;
    tls.timeout = options.timeout;
    if (x509 != nullptr) {
      tls.certificate_chain_pem = x509->certificate_chain_pem();
      tls.client_key = x509->key();
    }
    DEVID_ASSIGN_OR_RETURN(auto client, HttpsClient::Connect(options.host, options.port, tls));
    return Registration(options, std::move(registration_id), std::move(client));
  }

  // Put sends the register request; an empty authorization sends none.
  Result<HttpResponse> Put(const std::string& authorization, const std::string& body) {
    return Send("PUT", "/register", authorization, body);
  }

  // Follow polls the operation a 200/202 register answer started until it is assigned or failed
  // (protocol notes §1.3); tpm, when given, installs the final answer's activation blob.
  Result<Assignment> Follow(HttpResponse response, const std::string& authorization,
                            TpmCredential* tpm) {
    for (int polls = 0;; ++polls) {
      if (response.status != 200 && response.status != 202) {
        return std::unexpected(ServiceError(response, Action()));
      }
      json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object() || !body.contains("status") || !body["status"].is_string()) {
        return std::unexpected(Internal(Action() + ": the service's answer has no status"));
      }
      std::string status = body["status"];
      if (status == "assigned") return Assigned(body, tpm);
      if (status == "failed") return std::unexpected(Failed(body));
      if (status != "assigning" && status != "unassigned") {
        return std::unexpected(FailedPrecondition(Action() + ": the registration is " + status));
      }
      std::string operation = body.value("operationId", "");
      if (operation.empty()) {
        return std::unexpected(Internal(Action() + ": the answer has no operationId"));
      }
      if (polls >= options_.max_polls) {
        return std::unexpected(FailedPrecondition(Action() + ": still " + status + " after " +
                                                  std::to_string(polls) + " status reads"));
      }
      Wait(std::chrono::seconds(RetryAfterSeconds(response)));
      DEVID_ASSIGN_OR_RETURN(response,
                             Send("GET", "/operations/" + operation, authorization, "{}"));
    }
  }

  const std::string& registration_id() const { return registration_id_; }

  std::string Action() const { return "registering " + registration_id_; }

 private:
  Registration(const ProvisioningOptions& options, std::string registration_id,
               HttpsClient client)
      : options_(options),
        registration_id_(std::move(registration_id)),
        client_(std::move(client)) {}

  Result<HttpResponse> Send(std::string_view method, const std::string& path,
                             const std::string& authorization, const std::string& body) {
    std::vector<HttpHeader> headers = {{"accept", "application/json"},
                                        {"content-type", "application/json; charset=utf-8"}};
    if (!authorization.empty()) headers.emplace_back("authorization", authorization);
    std::string target = "/" + options_.id_scope + "/registrations/" + registration_id_ + path +
                         "?api-version=" + PercentEncodeComponent(options_.api_version);
    return client_.Send(method, target, headers, body);
  }

  void Wait(std::chrono::seconds seconds) {
    if (options_.wait) {
      options_.wait(seconds);
    } else {
      std::this_thread::sleep_for(seconds);
    }
  }

  Result<Assignment> Assigned(const json& body, TpmCredential* tpm) {
    json state = body.value("registrationState", json::object());
    if (!state.is_object()) state = json::object();
    if (tpm != nullptr) {
      // The service wraps the hub key again in the final answer; Node and the C SDK install it
      // (protocol notes §4.2 step 4).
      std::string blob;
      if (state.contains("tpm") && state["tpm"].is_object()) {
        blob = state["tpm"].value("authenticationKey", "");
      }
      if (blob.empty()) {
        return std::unexpected(
            Internal(Action() + ": the final answer has no tpm.authenticationKey"));
      }
      DEVID_ASSIGN_OR_RETURN(auto bytes, ossl::Base64Decode(blob));
      DEVID_TRY(tpm->ActivateIdentityKey(bytes));
    }
    Assignment out;
    out.registration_id = state.value("registrationId", registration_id_);
    out.assigned_hub = state.value("assignedHub", "");
    out.device_id = state.value("deviceId", "");
    out.substatus = state.value("substatus", "");
    if (auto chain = state.find("issuedCertificateChain"); chain != state.end()) {
      DEVID_ASSIGN_OR_RETURN(out.issued_certificate_chain_pem, IssuedChainPem(*chain));
    }
    return out;
  }

  // IssuedChainPem turns the answer's issuedCertificateChain (base64 DER, leaf first) into PEM.
  Result<std::string> IssuedChainPem(const json& chain) const {
    Error malformed =
        Internal(Action() + ": the issued certificate chain in the answer does not parse");
    if (!chain.is_array() || chain.empty()) return std::unexpected(malformed);
    std::string pem;
    for (const json& element : chain) {
      if (!element.is_string()) return std::unexpected(malformed);
      auto der = ossl::Base64Decode(element.get<std::string>());
      if (!der) return std::unexpected(malformed);
      auto certificate = pki::Certificate::FromDer(
          std::string_view(reinterpret_cast<const char*>(der->data()), der->size()));
      if (!certificate) return std::unexpected(malformed);
      pem += certificate->ToPem();
    }
    return pem;
  }

  Error Failed(const json& body) const {
    json state = body.value("registrationState", json::object());
    std::string text = Action() + ": the service refused the registration";
    if (state.is_object()) {
      if (state.contains("errorCode") && state["errorCode"].is_number_integer()) {
        text += " (errorCode " + std::to_string(state["errorCode"].get<int64_t>()) + ")";
      }
      if (state.contains("errorMessage") && state["errorMessage"].is_string()) {
        text += ": " + state["errorMessage"].get<std::string>();
      }
    }
    return FailedPrecondition(std::move(text));
  }

  const ProvisioningOptions& options_;
  std::string registration_id_;
  HttpsClient client_;
};

// RegisterWithSas runs one symmetric-key registration on an open registration connection.
Result<Assignment> RegisterWithSas(Registration& registration, SasCredential& key,
                                   const std::string& id_scope) {
  DEVID_ASSIGN_OR_RETURN(std::string token,
                         DeviceSasToken(key, id_scope, registration.registration_id()));
  std::string body = json{{"registrationId", registration.registration_id()}}.dump();
  DEVID_ASSIGN_OR_RETURN(HttpResponse response, registration.Put(token, body));
  return registration.Follow(std::move(response), token, nullptr);
}

}  // namespace

ProvisioningClient::ProvisioningClient(ProvisioningOptions options)
    : options_(std::move(options)) {}

Result<Assignment> ProvisioningClient::RegisterWithSymmetricKey(SasCredential& key) {
  DEVID_ASSIGN_OR_RETURN(auto registration,
                         Registration::Start(options_, options_.registration_id));
  return RegisterWithSas(registration, key, options_.id_scope);
}

Result<Assignment> ProvisioningClient::RegisterWithSymmetricKeys(SasCredential& primary,
                                                                 SasCredential& secondary) {
  // The server was authenticated by Start, so a kUnauthenticated below is the service refusing
  // the key, not the device refusing the server.
  DEVID_ASSIGN_OR_RETURN(auto registration,
                         Registration::Start(options_, options_.registration_id));
  auto assignment = RegisterWithSas(registration, primary, options_.id_scope);
  if (assignment || assignment.error().code() != ErrorCode::kUnauthenticated) return assignment;
  auto rolled = RegisterWithSas(registration, secondary, options_.id_scope);
  if (!rolled) {
    return std::unexpected(rolled.error().WithContext("the primary key was rejected (" +
                                                      assignment.error().message() +
                                                      "); with the secondary key"));
  }
  rolled->secondary_key_used = true;
  return rolled;
}

Result<Assignment> ProvisioningClient::RegisterWithX509(const X509Credential& credential,
                                                        std::string_view csr_pem) {
  // DPS takes the leaf's common name as the registration ID (protocol notes §3).
  std::string registration_id =
      options_.registration_id.empty() ? credential.common_name() : options_.registration_id;
  json body = {{"registrationId", registration_id}};
  if (!csr_pem.empty()) {
    auto csr = pki::Csr::FromPem(csr_pem);
    if (!csr) return std::unexpected(csr.error().WithContext("the certificate request"));
    body["csr"] = ossl::Base64Encode(csr->ToDer());
  }
  DEVID_ASSIGN_OR_RETURN(auto registration,
                         Registration::Start(options_, std::move(registration_id), &credential));
  DEVID_ASSIGN_OR_RETURN(HttpResponse response, registration.Put("", body.dump()));
  return registration.Follow(std::move(response), "", nullptr);
}

Result<Assignment> ProvisioningClient::RegisterWithTpm(TpmCredential& tpm) {
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> ek, tpm.EndorsementKey());
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> srk, tpm.StorageRootKey());
  std::string registration_id =
      options_.registration_id.empty() ? tpm::RegistrationIdFromEk(ek) : options_.registration_id;
  DEVID_ASSIGN_OR_RETURN(auto registration, Registration::Start(options_, registration_id));
  json keys = {{"endorsementKey", ossl::Base64Encode(ek)},
               {"storageRootKey", ossl::Base64Encode(srk)}};
  // devid extensions (docs/device-provisioning.md), in both PUTs: the EK certificate lets a
  // service check the EK belongs to a genuine TPM; the AK is what measured boot quotes with.
  DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> ek_certificate, tpm.EndorsementKeyCertificate());
  if (!ek_certificate.empty())
    keys["endorsementKeyCertificate"] = ossl::Base64Encode(ek_certificate);
  if (!options_.quote_pcrs.empty()) {
    DEVID_ASSIGN_OR_RETURN(std::vector<uint8_t> ak, tpm.AttestationKey());
    keys["attestationKey"] = ossl::Base64Encode(ak);
  }
  json body = {{"registrationId", registration_id}, {"tpm", std::move(keys)}};

  // §4.2 steps 1-2: without a token the service answers 401 with the activation blob.
  DEVID_ASSIGN_OR_RETURN(HttpResponse challenge, registration.Put("", body.dump()));
  if (challenge.status != 401)
    return std::unexpected(ServiceError(challenge, registration.Action()));
  json answer = json::parse(challenge.body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("authenticationKey") ||
      !answer["authenticationKey"].is_string()) {
    return std::unexpected(ServiceError(challenge, registration.Action()));
  }
  auto blob = ossl::Base64Decode(answer["authenticationKey"].get<std::string>());
  if (!blob) {
    return std::unexpected(
        InvalidArgument(registration.Action() + ": the TPM challenge is not base64"));
  }
  DEVID_TRY(tpm.ActivateIdentityKey(*blob));
  // Only a service that got the AK asks for a quote; without one the service decides alone.
  if (auto quote_challenge = answer.find("attestationChallenge");
      quote_challenge != answer.end() && !options_.quote_pcrs.empty()) {
    DEVID_ASSIGN_OR_RETURN(json evidence, QuoteEvidence(tpm, *quote_challenge, options_.quote_pcrs,
                                                        registration.Action()));
    body["tpm"].update(evidence);
  }

  // Step 3: the same request, signed inside the TPM.
  DEVID_ASSIGN_OR_RETURN(std::string token,
                         DeviceSasToken(tpm, options_.id_scope, registration_id));
  DEVID_ASSIGN_OR_RETURN(HttpResponse response, registration.Put(token, body.dump()));
  return registration.Follow(std::move(response), token, &tpm);
}

}  // namespace devid::sdk
