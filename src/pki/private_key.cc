#include "pki/private_key.h"

#include <openssl/ec.h>
#include <openssl/pem.h>

#include "ossl/error.h"

namespace devid::pki {
namespace {

Result<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0) return std::unexpected(Internal("reading memory BIO"));
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<PrivateKey> PrivateKey::GenerateEcP256() {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return std::unexpected(ossl::ErrorFromQueue("generating a P-256 key"));
  return PrivateKey(std::move(key));
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected(ossl::ErrorFromQueue("reading a private key"));
  // An empty passphrase callback: encrypted keys must be decrypted by their key store first.
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!key) {
    return std::unexpected(
        ossl::ErrorFromQueue("parsing a PEM private key", ErrorCode::kInvalidArgument));
  }
  return PrivateKey(std::move(key));
}

Result<std::string> PrivateKey::ToPem() const {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("encoding a private key"));
  }
  return BioToString(bio.get());
}

Result<std::string> PrivateKey::PublicKeyPem() const {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("encoding a public key"));
  }
  return BioToString(bio.get());
}

}  // namespace devid::pki
