#include "keys/openssl_signing_key.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>

#include <cstring>
#include <utility>

#include "ossl/error.h"

// EC_KEY_METHOD is deprecated in OpenSSL 3, but it is the one hook for a key that signs elsewhere
// without writing a provider (Debian 12 ships no PKCS #11 provider); libp11 takes the same route.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace devid::keys {
namespace {

using KeyRef = std::shared_ptr<const Key>;

// OpenSSL calls the sign callback on the thread that drives the handshake.
thread_local std::optional<Error> last_failure;

// OpenSSL copies an EC_KEY's ex_data on EC_KEY_dup; each copy gets its own reference.
int DupKeyRef(CRYPTO_EX_DATA*, const CRYPTO_EX_DATA*, void** from, int, long, void*) {
  if (*from != nullptr) *from = new KeyRef(*static_cast<KeyRef*>(*from));
  return 1;
}

void FreeKeyRef(void*, void* ref, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<KeyRef*>(ref);
}

int KeyRefIndex() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, DupKeyRef, FreeKeyRef);
  return index;
}

// SignDigestDer is what ECDSA_sign reaches; it returns 0 with an error queued when the store
// fails, which OpenSSL reports as a failed signature (in TLS, a failed handshake).
int SignDigestDer(int, const unsigned char* digest, int digest_len, unsigned char* sig,
                  unsigned int* sig_len, const BIGNUM*, const BIGNUM*, EC_KEY* ec) {
  auto* ref = static_cast<KeyRef*>(EC_KEY_get_ex_data(ec, KeyRefIndex()));
  if (ref == nullptr || digest_len < 0) return 0;
  auto signature =
      (*ref)->SignDigest(std::span<const uint8_t>(digest, static_cast<size_t>(digest_len)));
  if (!signature) {
    ERR_raise_data(ERR_LIB_EC, ERR_R_EC_LIB, "%s", signature.error().message().c_str());
    last_failure = signature.error();
    return 0;
  }
  if (signature->size() > static_cast<size_t>(ECDSA_size(ec))) return 0;
  std::memcpy(sig, signature->data(), signature->size());
  *sig_len = static_cast<unsigned int>(signature->size());
  return 1;
}

// SignDigestSig is what ECDSA_do_sign reaches: the same signature, decoded.
ECDSA_SIG* SignDigestSig(const unsigned char* digest, int digest_len, const BIGNUM*, const BIGNUM*,
                         EC_KEY* ec) {
  std::vector<unsigned char> der(static_cast<size_t>(ECDSA_size(ec)));
  unsigned int der_len = 0;
  if (SignDigestDer(0, digest, digest_len, der.data(), &der_len, nullptr, nullptr, ec) != 1) {
    return nullptr;
  }
  const unsigned char* p = der.data();
  return d2i_ECDSA_SIG(nullptr, &p, der_len);
}

// DelegatingMethod is OpenSSL's EC method with signing replaced; made once, never freed.
const EC_KEY_METHOD* DelegatingMethod() {
  static EC_KEY_METHOD* method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m == nullptr) return m;
    int (*sign_setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), nullptr, &sign_setup, nullptr);
    EC_KEY_METHOD_set_sign(m, SignDigestDer, sign_setup, SignDigestSig);
    return m;
  }();
  return method;
}

}  // namespace

Result<ossl::UniquePtr<EVP_PKEY>> OpenSslSigningKey(std::shared_ptr<const Key> key) {
  if (key == nullptr) return std::unexpected(InvalidArgument("no key to sign with"));
  if (key->algorithm() == KeyAlgorithm::kRsa3072 || key->algorithm() == KeyAlgorithm::kEd25519) {
    return std::unexpected(InvalidArgument(
        "key " + key->uri() + " cannot sign for TLS: it is " +
        std::string(KeyAlgorithmName(key->algorithm())) +
        ", and only ECDSA P-256 or P-384 keys sign the handshake through their store (TLS 1.3 "
        "needs RSA-PSS, which devid's RSA keys do not make); create an ecdsa-p256 key"));
  }
  std::string doing = "preparing key " + key->uri() + " for TLS";
  const EC_KEY* public_ec = EVP_PKEY_get0_EC_KEY(key->public_key());
  EC_KEY* ec = public_ec != nullptr ? EC_KEY_dup(public_ec) : nullptr;
  if (ec == nullptr || DelegatingMethod() == nullptr ||
      EC_KEY_set_method(ec, DelegatingMethod()) != 1) {
    EC_KEY_free(ec);
    return std::unexpected(ossl::ErrorFromQueue(doing));
  }
  auto* ref = new KeyRef(std::move(key));
  if (EC_KEY_set_ex_data(ec, KeyRefIndex(), ref) != 1) {
    delete ref;
    EC_KEY_free(ec);
    return std::unexpected(ossl::ErrorFromQueue(doing));
  }
  // ec owns ref from here. The method must be set before the EVP_PKEY takes ec: OpenSSL marks
  // keys with a non-default method as foreign then, and routes their operations to it.
  ossl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
  if (!pkey || EVP_PKEY_assign_EC_KEY(pkey.get(), ec) != 1) {
    EC_KEY_free(ec);
    return std::unexpected(ossl::ErrorFromQueue(doing));
  }
  // pkey takes ownership of ec.
  return pkey;
}

std::optional<Error> TakeSigningFailure() { return std::exchange(last_failure, std::nullopt); }

}  // namespace devid::keys

#pragma GCC diagnostic pop
