#include "sdk/pinned_jws_verifier.h"

#include <cjose/cjose.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "ossl/base64.h"
#include "pki/jose_ptr.h"
#include "pki/x5t.h"

namespace devid::sdk {
namespace {

using nlohmann::json;

std::unexpected<JwsRefused> Refuse(JwsRefusal reason, std::string message) {
  return std::unexpected(JwsRefused{reason, std::move(message)});
}

}  // namespace

// Signer is one pinned certificate, its x5t#S256, the JWS alg its key signs with (RFC 7518 §3.4)
// and the key as cjose's JWK.
struct PinnedJwsVerifier::Signer {
  pki::Certificate certificate;
  std::string x5t;
  std::string alg;
  pki::JosePtr<cjose_jwk_t> jwk;
};

PinnedJwsVerifier::PinnedJwsVerifier(std::vector<Signer> signers) : signers_(std::move(signers)) {}

PinnedJwsVerifier::~PinnedJwsVerifier() = default;

Result<std::unique_ptr<PinnedJwsVerifier>> PinnedJwsVerifier::Create(
    std::string_view certificates_pem, std::string_view context) {
  std::string prefix = std::string(context) + ": ";
  auto certificates = pki::Certificate::AllFromPem(certificates_pem);
  if (!certificates || certificates->empty()) {
    return std::unexpected(InvalidArgument(prefix + "the signer file holds no PEM certificate"));
  }
  std::vector<Signer> signers;
  for (pki::Certificate& certificate : *certificates) {
    EVP_PKEY* key = X509_get0_pubkey(certificate.get());
    char curve[32] = {};
    size_t curve_len = 0;
    uint8_t point[1 + 2 * 48] = {};
    size_t point_len = 0;
    bool ec = key != nullptr && EVP_PKEY_is_a(key, "EC") &&
              EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                             &curve_len) == 1 &&
              EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                              &point_len) == 1;
    ERR_clear_error();
    std::string_view group(curve, curve_len);
    cjose_jwk_ec_keyspec spec{};
    std::string alg;
    if (ec && group == "prime256v1" && point_len == 65) {
      spec.crv = CJOSE_JWK_EC_P_256;
      alg = "ES256";
    } else if (ec && group == "secp384r1" && point_len == 97) {
      spec.crv = CJOSE_JWK_EC_P_384;
      alg = "ES384";
    } else {
      return std::unexpected(InvalidArgument(prefix + "the key of " + certificate.SubjectName() +
                                             " is not ECDSA P-256 or P-384"));
    }
    // The uncompressed point is 04 || X || Y (SEC 1 §2.3.3).
    size_t size = (point_len - 1) / 2;
    spec.x = point + 1;
    spec.xlen = size;
    spec.y = point + 1 + size;
    spec.ylen = size;
    cjose_err err{};
    pki::JosePtr<cjose_jwk_t> jwk(cjose_jwk_create_EC_spec(&spec, &err));
    if (!jwk) {
      return std::unexpected(InvalidArgument(prefix + "loading the key of " +
                                             certificate.SubjectName() + ": " +
                                             (err.message ? err.message : "cjose error")));
    }
    std::string x5t = pki::X5tS256(certificate);
    signers.push_back({std::move(certificate), std::move(x5t), std::move(alg), std::move(jwk)});
  }
  return std::unique_ptr<PinnedJwsVerifier>(new PinnedJwsVerifier(std::move(signers)));
}

std::expected<VerifiedJws, JwsRefused> PinnedJwsVerifier::Verify(
    std::string_view jws, const JwsKind& kind, std::chrono::system_clock::time_point now) const {
  std::string noun(kind.noun);
  std::string signer_name(kind.signer);
  while (!jws.empty() && (jws.back() == '\n' || jws.back() == '\r' || jws.back() == ' ')) {
    jws.remove_suffix(1);
  }
  size_t first = jws.find('.');
  size_t second = first == std::string_view::npos ? first : jws.find('.', first + 1);
  if (second == std::string_view::npos || jws.find('.', second + 1) != std::string_view::npos) {
    return Refuse(
        JwsRefusal::kMalformed,
        "this is not a signed " + noun + " (a JWS has three base64url parts separated by '.')");
  }
  auto header_bytes = ossl::Base64UrlDecode(jws.substr(0, first));
  json header = header_bytes
                    ? json::parse(std::string(header_bytes->begin(), header_bytes->end()), nullptr,
                                  /*allow_exceptions=*/false)
                    : json();
  if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string()) {
    return Refuse(JwsRefusal::kMalformed,
                  "the " + noun + "'s header is not a JSON object with an \"alg\"");
  }
  std::string alg = header["alg"].get<std::string>();
  if (alg == "none" || second + 1 == jws.size()) {
    return Refuse(JwsRefusal::kUnsigned, "the " + noun + " is not signed (" +
                                             (alg == "none" ? "alg \"none\"" : "no signature") +
                                             "); " + std::string(kind.only));
  }
  if (header.contains("crit")) {
    return Refuse(JwsRefusal::kMalformed,
                  "the " + noun +
                      "'s header has critical parameters this device does not understand (RFC "
                      "7515 §4.1.11)");
  }
  if (!header.contains("typ") || !header["typ"].is_string() || header["typ"] != kind.typ) {
    std::string typ = header.contains("typ") ? header["typ"].dump() : "none";
    return Refuse(JwsRefusal::kMalformed,
                  "the JWS is not a " + std::string(kind.description) + " (typ " + typ + ")");
  }
  if (!header.contains("x5t#S256") || !header["x5t#S256"].is_string()) {
    return Refuse(JwsRefusal::kUnknownSigner,
                  "the " + noun + " does not name its signer certificate (x5t#S256)");
  }
  std::string x5t = header["x5t#S256"].get<std::string>();
  cjose_err err{};
  pki::JosePtr<cjose_jws_t> parsed(cjose_jws_import(jws.data(), jws.size(), &err));
  if (!parsed) {
    return Refuse(JwsRefusal::kMalformed, "the " + noun + " does not parse as a JWS: " +
                                              (err.message ? err.message : "cjose error"));
  }
  const Signer* signer = nullptr;
  for (const Signer& candidate : signers_) {
    if (candidate.x5t == x5t) signer = &candidate;
  }
  if (signer == nullptr) {
    // A certificate the device does not pin may still be for a pinned key: the server renews
    // its certificate with the same key, and scale-out nodes share one key under certificates of
    // their own. The signature decides, under a pinned certificate that is valid now.
    for (const Signer& candidate : signers_) {
      if (candidate.alg == alg && now >= candidate.certificate.NotBefore() &&
          now < candidate.certificate.NotAfter() &&
          cjose_jws_verify(parsed.get(), candidate.jwk.get(), &err)) {
        signer = &candidate;
        break;
      }
    }
    if (signer == nullptr) {
      return Refuse(JwsRefusal::kUnknownSigner,
                    "the " + noun + " is signed by a certificate that is not your pinned " +
                        signer_name + ", with none of its keys (x5t#S256 " + x5t + ")");
    }
  } else {
    // The pinned key decides the algorithm, never the JWS (RFC 8725 §3.1).
    if (alg != signer->alg) {
      return Refuse(JwsRefusal::kBadSignature, "the " + noun + " is signed with " + alg +
                                                   " but the " + signer_name + "'s key uses " +
                                                   signer->alg);
    }
    if (now < signer->certificate.NotBefore() || now >= signer->certificate.NotAfter()) {
      return Refuse(JwsRefusal::kSignerNotValid,
                    "the " + signer_name + "'s certificate " + signer->certificate.SubjectName() +
                        " is valid only from " + FormatUtc(signer->certificate.NotBefore()) +
                        " to " + FormatUtc(signer->certificate.NotAfter()));
    }
    if (!cjose_jws_verify(parsed.get(), signer->jwk.get(), &err)) {
      return Refuse(JwsRefusal::kBadSignature,
                    "the " + noun + "'s signature does not verify with the " + signer_name +
                        "'s key (it was changed or signed by another key)");
    }
  }
  uint8_t* plaintext = nullptr;
  size_t plaintext_len = 0;
  if (!cjose_jws_get_plaintext(parsed.get(), &plaintext, &plaintext_len, &err)) {
    return Refuse(JwsRefusal::kMalformed, "the " + noun + " has no payload");
  }
  return VerifiedJws{std::string(reinterpret_cast<const char*>(plaintext), plaintext_len),
                     &signer->certificate};
}

}  // namespace devid::sdk
