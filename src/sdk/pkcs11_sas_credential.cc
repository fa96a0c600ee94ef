#include <openssl/crypto.h>

#include "devid/credential.h"
#include "keys/pkcs11/pkcs11_key_store.h"
#include "ossl/base64.h"

namespace devid::sdk {
namespace {

// Pkcs11SasCredential computes SAS signatures in a PKCS #11 token through keys/pkcs11.
class Pkcs11SasCredential final : public SasCredential {
 public:
  Pkcs11SasCredential(std::unique_ptr<keys::Pkcs11KeyStore> store,
                      std::unique_ptr<keys::HmacKey> key)
      : store_(std::move(store)), key_(std::move(key)) {}

  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) override {
    return key_->HmacSha256(message);
  }

 private:
  std::unique_ptr<keys::Pkcs11KeyStore> store_;  // declared first: the key must die before it
  std::unique_ptr<keys::HmacKey> key_;
};

}  // namespace

Result<std::unique_ptr<SasCredential>> OpenPkcs11SasCredential(
    std::string_view uri, std::string_view default_module_path) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri parsed, keys::ParseKeyUri(uri));
  auto store = std::make_unique<keys::Pkcs11KeyStore>(std::string(default_module_path));
  DEVID_ASSIGN_OR_RETURN(std::unique_ptr<keys::HmacKey> key, store->LoadHmacKey(parsed));
  return std::make_unique<Pkcs11SasCredential>(std::move(store), std::move(key));
}

Result<std::string> ImportPkcs11SasKey(std::string_view uri, std::string_view key_base64,
                                       std::string_view default_module_path) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri parsed, keys::ParseKeyUri(uri));
  auto key = ossl::Base64Decode(key_base64);
  if (!key || key->empty()) {
    return std::unexpected(InvalidArgument("the symmetric key is not base64"));
  }
  keys::Pkcs11KeyStore store{std::string(default_module_path)};
  auto imported = store.ImportHmacKey(parsed, *key);
  OPENSSL_cleanse(key->data(), key->size());
  if (!imported) return std::unexpected(imported.error());
  return (*imported)->uri();
}

}  // namespace devid::sdk
