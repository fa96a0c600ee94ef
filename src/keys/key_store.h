#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "keys/key_uri.h"
#include "ossl/unique_ptr.h"

namespace devid::keys {

// KeyAlgorithm is a key type and the one signature scheme devid uses with it.
enum class KeyAlgorithm {
  kEcdsaP256,  // ecdsa-with-SHA256 (RFC 5758 §3.2); the default
  kEcdsaP384,  // ecdsa-with-SHA384 (RFC 5758 §3.2)
  kRsa3072,    // sha256WithRSAEncryption, PKCS #1 v1.5 (RFC 4055 §5)
  kEd25519,    // Ed25519, pure (RFC 8410 §3)
};

// KeyAlgorithmName returns the stable name: "ecdsa-p256", "ecdsa-p384", "rsa-3072", "ed25519".
std::string_view KeyAlgorithmName(KeyAlgorithm algorithm);

// ParseKeyAlgorithm maps a name from KeyAlgorithmName back; fails with kInvalidArgument.
Result<KeyAlgorithm> ParseKeyAlgorithm(std::string_view name);

// SignatureNid returns the OpenSSL NID of the X.509 signature algorithm Key::Sign produces
// (NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384, NID_sha256WithRSAEncryption, NID_ED25519).
int SignatureNid(KeyAlgorithm algorithm);

// SignatureDigest returns the digest Key::Sign hashes with (SHA-256 or SHA-384), or nullptr for
// Ed25519, which hashes internally (RFC 8032 §5.1.6).
const EVP_MD* SignatureDigest(KeyAlgorithm algorithm);

// AlgorithmOfPublicKey tells which KeyAlgorithm a public key belongs to. It fails with
// kInvalidArgument for any other type or size (P-192, RSA-2048, ...).
Result<KeyAlgorithm> AlgorithmOfPublicKey(const EVP_PKEY* public_key);

class Key;

// CheckSignsDigests succeeds for an ECDSA key and fails with kInvalidArgument, naming the key and
// why, for the algorithms whose schemes hash inside and so cannot sign a ready digest.
Status CheckSignsDigests(const Key& key);

// Key is a handle to a private key that stays inside its key store: it signs but never reveals
// the private part. Sign may be called from many threads at once. A Key must not outlive the
// KeyStore that returned it.
class Key {
 public:
  virtual ~Key() = default;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  // uri is the key's URI, secrets redacted (KeyUri::ToString).
  const std::string& uri() const { return uri_; }
  KeyAlgorithm algorithm() const { return algorithm_; }
  // public_key returns the public half only (no private material); owned by this Key.
  EVP_PKEY* public_key() const { return public_key_.get(); }

  // Sign signs message with the algorithm's scheme (see KeyAlgorithm) and returns the signature
  // in the form X.509 and CMS carry: a DER ECDSA-Sig-Value (RFC 3279 §2.2.3),
  // the PKCS #1 v1.5 signature block, or Ed25519's 64 bytes. Hashing happens inside, so the
  // caller passes the whole message (a TBSCertificate, a TBSCertList, ...). It fails with the
  // store's error (kUnavailable when the device is gone, kInternal otherwise).
  virtual Result<std::vector<uint8_t>> Sign(std::span<const uint8_t> message) const = 0;

  // SignDigest signs a digest the caller already computed and returns a DER ECDSA-Sig-Value; it
  // is how a TLS stack signs its handshake hash through the key (RFC 8446 §4.4.3). The digest may
  // have any length: ECDSA uses its leftmost bits (FIPS 186-4 §6.4). It fails with
  // kInvalidArgument for RSA and Ed25519 keys, whose schemes hash inside, else as Sign.
  virtual Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t> digest) const = 0;

 protected:
  Key(std::string uri, KeyAlgorithm algorithm, ossl::UniquePtr<EVP_PKEY> public_key)
      : uri_(std::move(uri)), algorithm_(algorithm), public_key_(std::move(public_key)) {}

 private:
  std::string uri_;
  KeyAlgorithm algorithm_;
  ossl::UniquePtr<EVP_PKEY> public_key_;
};

// KeyStore creates and loads keys of one URI scheme. Implementations are thread-safe.
class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Create makes a new key of algorithm at uri. It fails with kAlreadyExists when uri already
  // names a key, kInvalidArgument when uri lacks what the store needs, kNotFound when its
  // container (directory, token) is missing, and kPermissionDenied on a wrong passphrase or PIN.
  virtual Result<std::unique_ptr<Key>> Create(const KeyUri& uri, KeyAlgorithm algorithm) = 0;

  // Load opens the existing key at uri. It fails with kNotFound when there is none, with
  // kPermissionDenied on a wrong passphrase or PIN, and kInvalidArgument for an unsupported key.
  virtual Result<std::unique_ptr<Key>> Load(const KeyUri& uri) = 0;
};

// KeyStores is the explicit table of key stores by URI scheme, filled in main. It does not own
// the stores, which must outlive it.
class KeyStores {
 public:
  // Add makes store handle URIs whose scheme is scheme ("file", "pkcs11").
  void Add(std::string scheme, KeyStore& store) { stores_[std::move(scheme)] = &store; }

  // Create / Load parse uri and dispatch to the store of its scheme. They fail with
  // kInvalidArgument for a bad URI or a scheme with no store, else as KeyStore.
  Result<std::unique_ptr<Key>> Create(std::string_view uri, KeyAlgorithm algorithm) const;
  Result<std::unique_ptr<Key>> Load(std::string_view uri) const;

 private:
  Result<KeyStore*> For(const KeyUri& uri) const;
  std::map<std::string, KeyStore*, std::less<>> stores_;
};

// VerifySignature checks a signature made by Key::Sign under public_key with algorithm's scheme.
// It fails with kUnauthenticated when the signature does not verify.
Status VerifySignature(const EVP_PKEY* public_key, KeyAlgorithm algorithm,
                       std::span<const uint8_t> message, std::span<const uint8_t> signature);

}  // namespace devid::keys
