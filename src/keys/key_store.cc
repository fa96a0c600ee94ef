#include "keys/key_store.h"

#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "ossl/error.h"

namespace devid::keys {

std::string_view KeyAlgorithmName(KeyAlgorithm algorithm) {
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      return "ecdsa-p256";
    case KeyAlgorithm::kEcdsaP384:
      return "ecdsa-p384";
    case KeyAlgorithm::kRsa3072:
      return "rsa-3072";
    case KeyAlgorithm::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

Result<KeyAlgorithm> ParseKeyAlgorithm(std::string_view name) {
  for (KeyAlgorithm a : {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEcdsaP384, KeyAlgorithm::kRsa3072,
                         KeyAlgorithm::kEd25519}) {
    if (KeyAlgorithmName(a) == name) return a;
  }
  return std::unexpected(InvalidArgument("key algorithm \"" + std::string(name) +
                                         "\": want ecdsa-p256, ecdsa-p384, rsa-3072 or ed25519"));
}

int SignatureNid(KeyAlgorithm algorithm) {
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      return NID_ecdsa_with_SHA256;
    case KeyAlgorithm::kEcdsaP384:
      return NID_ecdsa_with_SHA384;
    case KeyAlgorithm::kRsa3072:
      return NID_sha256WithRSAEncryption;
    case KeyAlgorithm::kEd25519:
      return NID_ED25519;
  }
  return NID_undef;
}

const EVP_MD* SignatureDigest(KeyAlgorithm algorithm) {
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      return EVP_sha256();
    case KeyAlgorithm::kEcdsaP384:
      return EVP_sha384();
    case KeyAlgorithm::kRsa3072:
      return EVP_sha256();
    case KeyAlgorithm::kEd25519:
      return nullptr;
  }
  return nullptr;
}

Result<KeyAlgorithm> AlgorithmOfPublicKey(const EVP_PKEY* public_key) {
  if (EVP_PKEY_is_a(public_key, "ED25519")) return KeyAlgorithm::kEd25519;
  if (EVP_PKEY_is_a(public_key, "RSA")) {
    if (EVP_PKEY_get_bits(public_key) == 3072) return KeyAlgorithm::kRsa3072;
    return std::unexpected(InvalidArgument("RSA key of " +
                                           std::to_string(EVP_PKEY_get_bits(public_key)) +
                                           " bits: only RSA-3072 is supported"));
  }
  if (EVP_PKEY_is_a(public_key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(public_key, group, sizeof(group), &len) != 1) {
      return std::unexpected(
          ossl::ErrorFromQueue("reading an EC key's curve", ErrorCode::kInvalidArgument));
    }
    std::string_view name(group, len);
    if (name == "prime256v1" || name == "P-256") return KeyAlgorithm::kEcdsaP256;
    if (name == "secp384r1" || name == "P-384") return KeyAlgorithm::kEcdsaP384;
    return std::unexpected(InvalidArgument("EC key on curve " + std::string(name) +
                                           ": only P-256 and P-384 are supported"));
  }
  return std::unexpected(InvalidArgument("unsupported public key type"));
}

Status CheckSignsDigests(const Key& key) {
  if (key.algorithm() == KeyAlgorithm::kEcdsaP256 || key.algorithm() == KeyAlgorithm::kEcdsaP384) {
    return Ok();
  }
  return std::unexpected(InvalidArgument("signing a digest with " + key.uri() + ": a " +
                                         std::string(KeyAlgorithmName(key.algorithm())) +
                                         " key signs whole messages only (RSA PKCS #1 v1.5 and "
                                         "Ed25519 hash inside the signature)"));
}

Result<KeyStore*> KeyStores::For(const KeyUri& uri) const {
  auto it = stores_.find(uri.scheme);
  if (it == stores_.end()) {
    return std::unexpected(
        InvalidArgument("no key store for scheme \"" + uri.scheme + "\" in " + uri.ToString()));
  }
  return it->second;
}

Result<std::unique_ptr<Key>> KeyStores::Create(std::string_view text,
                                               KeyAlgorithm algorithm) const {
  DEVID_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(text));
  DEVID_ASSIGN_OR_RETURN(KeyStore * store, For(uri));
  return store->Create(uri, algorithm);
}

Result<std::unique_ptr<Key>> KeyStores::Load(std::string_view text) const {
  DEVID_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(text));
  DEVID_ASSIGN_OR_RETURN(KeyStore * store, For(uri));
  return store->Load(uri);
}

Status VerifySignature(const EVP_PKEY* public_key, KeyAlgorithm algorithm,
                       std::span<const uint8_t> message, std::span<const uint8_t> signature) {
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, SignatureDigest(algorithm), nullptr,
                                   const_cast<EVP_PKEY*>(public_key)) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("preparing to verify a signature"));
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("verifying a signature", ErrorCode::kUnauthenticated));
  }
  return Ok();
}

}  // namespace devid::keys
