#include "keys/tpm2/tpm2_key_store.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "keys/tpm2/tpm2_device.h"
#include "ossl/error.h"

namespace devid::keys {

struct Tpm2KeyStore::Connection {
  std::mutex mu;  // Tpm2Device runs one command at a time
  std::unique_ptr<Tpm2Device> device;
};

namespace {

// SharedConnection returns the process's open connection to the TPM at tcti, opening it when no
// key holds one (see the class comment for why there is only one).
Result<std::shared_ptr<Tpm2KeyStore::Connection>> SharedConnection(const std::string& tcti) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Tpm2KeyStore::Connection>> open;
  std::lock_guard lock(mu);
  if (auto existing = open[tcti].lock()) return existing;
  auto connection = std::make_shared<Tpm2KeyStore::Connection>();
  DEVID_ASSIGN_OR_RETURN(connection->device, Tpm2Device::Open(tcti));
  open[tcti] = connection;
  return connection;
}

// FieldBytes is the coordinate and digest length of a curve: its order has as many bits.
size_t FieldBytes(KeyAlgorithm algorithm) {
  return algorithm == KeyAlgorithm::kEcdsaP256 ? 32 : 48;
}

// LeftPadded returns bytes as a big-endian number of exactly size bytes (the TPM drops leading
// zeros of coordinates and signature halves).
std::vector<uint8_t> LeftPadded(const std::vector<uint8_t>& bytes, size_t size) {
  std::vector<uint8_t> out(size > bytes.size() ? size - bytes.size() : 0, 0);
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY>> PublicKey(const Tpm2EccPublicKey& tpm_key,
                                            KeyAlgorithm algorithm) {
  size_t n = FieldBytes(algorithm);
  // SEC 1 §2.3.3 uncompressed point: 04 || X || Y.
  std::vector<uint8_t> point = {0x04};
  for (const auto* coordinate : {&tpm_key.x, &tpm_key.y}) {
    std::vector<uint8_t> padded = LeftPadded(*coordinate, n);
    point.insert(point.end(), padded.begin(), padded.end());
  }
  const char* group = algorithm == KeyAlgorithm::kEcdsaP256 ? "P-256" : "P-384";
  ossl::UniquePtr<OSSL_PARAM_BLD> build(OSSL_PARAM_BLD_new());
  if (!build ||
      OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building the TPM key's EC public key"));
  }
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(build.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("reading the TPM key's EC public key"));
  }
  return ossl::UniquePtr<EVP_PKEY>(raw);
}

Result<std::vector<uint8_t>> DerSignature(const Tpm2EcdsaSignature& signature) {
  ossl::UniquePtr<BIGNUM> r(
      BN_bin2bn(signature.r.data(), static_cast<int>(signature.r.size()), nullptr));
  ossl::UniquePtr<BIGNUM> s(
      BN_bin2bn(signature.s.data(), static_cast<int>(signature.s.size()), nullptr));
  ossl::UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("encoding the TPM's ECDSA signature"));
  }
  // sig takes ownership of r and s.
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig.get(), &der);
  if (length <= 0) return std::unexpected(ossl::ErrorFromQueue("encoding the TPM's signature"));
  std::vector<uint8_t> out(der, der + length);
  OPENSSL_free(der);
  return out;
}

class Tpm2Key final : public Key {
 public:
  Tpm2Key(std::string uri, KeyAlgorithm algorithm, ossl::UniquePtr<EVP_PKEY> public_key,
          std::shared_ptr<Tpm2KeyStore::Connection> connection, uint32_t handle)
      : Key(std::move(uri), algorithm, std::move(public_key)),
        connection_(std::move(connection)),
        handle_(handle) {}

  Result<std::vector<uint8_t>> Sign(std::span<const uint8_t> message) const override {
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(message.data(), message.size(), digest, &length, SignatureDigest(algorithm()),
                   nullptr) != 1) {
      return std::unexpected(ossl::ErrorFromQueue("hashing a message to sign with " + uri()));
    }
    return SignDigest(std::span<const uint8_t>(digest, length));
  }

  Result<std::vector<uint8_t>> SignDigest(std::span<const uint8_t> digest) const override {
    // ECDSA uses the digest's leftmost bits, as many as the order has (FIPS 186-4 §6.4): P-256
    // and P-384 orders fill 32 and 48 bytes, so a longer digest is cut and a shorter one
    // zero-extended on the left to the size TPM2_Sign checks, the number unchanged.
    size_t n = FieldBytes(algorithm());
    std::vector<uint8_t> input(digest.begin(), digest.begin() + std::min(n, digest.size()));
    input = LeftPadded(input, n);
    Result<Tpm2EcdsaSignature> signature = [&] {
      std::lock_guard lock(connection_->mu);
      return connection_->device->SignEcdsa(handle_, input);
    }();
    if (!signature) {
      return std::unexpected(Error(signature.error().code(),
                                   "signing with " + uri() + ": " + signature.error().message()));
    }
    return DerSignature(*signature);
  }

 private:
  std::shared_ptr<Tpm2KeyStore::Connection> connection_;
  uint32_t handle_;
};

Error WithUri(const Error& error, std::string_view action, const KeyUri& uri) {
  return Error(error.code(), std::string(action) + " " + uri.ToString() + ": " + error.message());
}

}  // namespace

Tpm2KeyStore::Tpm2KeyStore(std::string default_tcti) : default_tcti_(std::move(default_tcti)) {}
Tpm2KeyStore::~Tpm2KeyStore() = default;

Result<std::shared_ptr<Tpm2KeyStore::Connection>> Tpm2KeyStore::Connect(const KeyUri& uri) {
  if (uri.scheme != "tpm2") {
    return std::unexpected(InvalidArgument("the TPM key store cannot open " + uri.ToString()));
  }
  return SharedConnection(uri.QueryAttribute("tcti").value_or(default_tcti_));
}

Result<std::unique_ptr<Key>> Tpm2KeyStore::Create(const KeyUri& uri, KeyAlgorithm algorithm) {
  if (algorithm != KeyAlgorithm::kEcdsaP256 && algorithm != KeyAlgorithm::kEcdsaP384) {
    return std::unexpected(
        InvalidArgument("creating " + uri.ToString() +
                        ": the TPM key store makes ecdsa-p256 and ecdsa-p384 keys, not " +
                        std::string(KeyAlgorithmName(algorithm))));
  }
  auto connection = Connect(uri);
  if (!connection) return std::unexpected(WithUri(connection.error(), "creating", uri));
  uint32_t handle = Tpm2Handle(uri);
  Tpm2EccCurve curve =
      algorithm == KeyAlgorithm::kEcdsaP256 ? Tpm2EccCurve::kNistP256 : Tpm2EccCurve::kNistP384;
  Result<Tpm2EccPublicKey> created = [&] {
    std::lock_guard lock((*connection)->mu);
    return (*connection)->device->CreateEccSigningKey(handle, curve);
  }();
  if (!created) return std::unexpected(WithUri(created.error(), "creating", uri));
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> public_key, PublicKey(*created, algorithm));
  return std::make_unique<Tpm2Key>(uri.ToString(), algorithm, std::move(public_key),
                                   std::move(*connection), handle);
}

Result<std::unique_ptr<Key>> Tpm2KeyStore::Load(const KeyUri& uri) {
  auto connection = Connect(uri);
  if (!connection) return std::unexpected(WithUri(connection.error(), "loading", uri));
  uint32_t handle = Tpm2Handle(uri);
  Result<Tpm2EccPublicKey> read = [&] {
    std::lock_guard lock((*connection)->mu);
    return (*connection)->device->ReadEccSigningKey(handle);
  }();
  if (!read) return std::unexpected(WithUri(read.error(), "loading", uri));
  KeyAlgorithm algorithm =
      read->curve == Tpm2EccCurve::kNistP256 ? KeyAlgorithm::kEcdsaP256 : KeyAlgorithm::kEcdsaP384;
  DEVID_ASSIGN_OR_RETURN(ossl::UniquePtr<EVP_PKEY> public_key, PublicKey(*read, algorithm));
  return std::make_unique<Tpm2Key>(uri.ToString(), algorithm, std::move(public_key),
                                   std::move(*connection), handle);
}

Status Tpm2KeyStore::DeleteKey(const KeyUri& uri) {
  auto connection = Connect(uri);
  if (!connection) return std::unexpected(WithUri(connection.error(), "deleting", uri));
  Status deleted = [&] {
    std::lock_guard lock((*connection)->mu);
    return (*connection)->device->DeleteEccSigningKey(Tpm2Handle(uri));
  }();
  if (!deleted) return std::unexpected(WithUri(deleted.error(), "deleting", uri));
  return Ok();
}

}  // namespace devid::keys
