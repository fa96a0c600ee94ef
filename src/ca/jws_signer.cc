#include "ca/jws_signer.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ossl/base64.h"
#include "ossl/error.h"
#include "ossl/unique_ptr.h"
#include "pki/x5t.h"

namespace devid::ca {
namespace {

// RawEcdsaSignature turns a DER ECDSA-Sig-Value into the fixed-size R || S that JWS carries
// (RFC 7518 §3.4), each integer left-padded to the curve's size.
Result<std::string> RawEcdsaSignature(const std::vector<uint8_t>& der, int size) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return std::unexpected(ossl::ErrorFromQueue("decoding an ECDSA signature"));
  std::string raw(static_cast<size_t>(2 * size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, size) != size ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + size, size) != size) {
    return std::unexpected(ossl::ErrorFromQueue("encoding an ECDSA signature"));
  }
  return raw;
}

int CoordinateSize(keys::KeyAlgorithm algorithm) {
  return algorithm == keys::KeyAlgorithm::kEcdsaP384 ? 48 : 32;
}

}  // namespace

Result<std::unique_ptr<JwsSigner>> JwsSigner::Create(pki::Certificate certificate,
                                                     std::unique_ptr<keys::Key> key,
                                                     std::string_view typ) {
  std::string alg;
  switch (key->algorithm()) {
    case keys::KeyAlgorithm::kEcdsaP256:
      alg = "ES256";
      break;
    case keys::KeyAlgorithm::kEcdsaP384:
      alg = "ES384";
      break;
    default:
      return std::unexpected(
          InvalidArgument("a JWS signing key must be ECDSA P-256 or P-384, not " +
                          std::string(keys::KeyAlgorithmName(key->algorithm()))));
  }
  bool matches = EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key->public_key()) == 1;
  ERR_clear_error();
  if (!matches) {
    return std::unexpected(InvalidArgument("the JWS signing key " + key->uri() +
                                           " does not match certificate " +
                                           certificate.SubjectName()));
  }
  // Every value is base64url or a fixed word, so the JSON needs no escaping.
  std::string header = R"({"alg":")" + alg + R"(","typ":")" + std::string(typ) +
                       R"(","x5t#S256":")" + pki::X5tS256(certificate) + R"("})";
  return std::unique_ptr<JwsSigner>(new JwsSigner(std::move(certificate), std::move(key), header));
}

JwsSigner::JwsSigner(pki::Certificate certificate, std::unique_ptr<keys::Key> key,
                     std::string header)
    : certificate_(std::move(certificate)),
      key_(std::move(key)),
      encoded_header_(ossl::Base64UrlEncode(header)) {}

Result<std::string> JwsSigner::Sign(std::string_view payload) const {
  // RFC 7515 §5.1: the signature covers ASCII(BASE64URL(header) || '.' || BASE64URL(payload)).
  std::string signing_input = encoded_header_ + "." + ossl::Base64UrlEncode(payload);
  auto der = key_->Sign(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(signing_input.data()), signing_input.size()));
  if (!der) return std::unexpected(der.error().WithContext("signing a JWS"));
  DEVID_ASSIGN_OR_RETURN(std::string raw,
                         RawEcdsaSignature(*der, CoordinateSize(key_->algorithm())));
  return signing_input + "." + ossl::Base64UrlEncode(raw);
}

bool JwsSigner::NeedsRenewal(std::chrono::system_clock::time_point now) const {
  auto not_before = certificate_.NotBefore();
  auto not_after = certificate_.NotAfter();
  return now < not_before || not_after - now < (not_after - not_before) / 3;
}

}  // namespace devid::ca
