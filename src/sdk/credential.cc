#include "devid/credential.h"

#include <openssl/crypto.h>

#include "keys/secret.h"
#include "keys/tpm2/tpm2_device.h"
#include "ossl/base64.h"
#include "ossl/mac.h"
#include "tpm/marshal.h"

namespace devid::sdk {
namespace {

// SoftwareSasCredential keeps the key in a cleansed-on-destruction Secret.
class SoftwareSasCredential final : public SasCredential {
 public:
  explicit SoftwareSasCredential(keys::Secret key) : key_(std::move(key)) {}

  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) override {
    const std::string& key = key_.value();
    return ossl::HmacSha256(std::span(reinterpret_cast<const uint8_t*>(key.data()), key.size()),
                            message);
  }

 private:
  keys::Secret key_;
};

// Tpm2Credential is the TPM through keys/tpm2 at Azure's handles.
class Tpm2Credential final : public TpmCredential {
 public:
  explicit Tpm2Credential(std::unique_ptr<keys::Tpm2Device> tpm) : tpm_(std::move(tpm)) {}

  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) override {
    return tpm_->HmacSha256(message);
  }
  Result<std::vector<uint8_t>> EndorsementKey() override { return tpm_->EndorsementKey(); }
  Result<std::vector<uint8_t>> StorageRootKey() override { return tpm_->StorageRootKey(); }
  Status ActivateIdentityKey(std::span<const uint8_t> activation_blob) override {
    return tpm_->ImportActivationBlob(activation_blob);
  }
  Result<std::vector<uint8_t>> EndorsementKeyCertificate() override {
    return tpm_->ReadEndorsementKeyCertificate();
  }
  Result<std::vector<uint8_t>> AttestationKey() override { return tpm_->CreateAttestationKey(); }

  Result<std::vector<uint8_t>> ActivateAttestationKeyCredential(
      std::span<const uint8_t> credential) override {
    tpm::Reader reader(credential);
    auto id_object = reader.B2("TPM2B_ID_OBJECT");
    if (!id_object || !reader.B2("TPM2B_ENCRYPTED_SECRET") || !reader.done()) {
      return std::unexpected(InvalidArgument(
          "the attestation key credential is not TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET"));
    }
    size_t id_size = 2 + id_object->size();  // with its UINT16 size
    return tpm_->ActivateCredential(keys::kTpm2AttestationKeyHandle, credential.first(id_size),
                                    credential.subspan(id_size));
  }

  Result<TpmQuote> Quote(std::span<const uint32_t> pcrs,
                         std::span<const uint8_t> nonce) override {
    DEVID_ASSIGN_OR_RETURN(keys::Tpm2Quote quote, tpm_->Quote(pcrs, nonce));
    return TpmQuote{std::move(quote.attest), std::move(quote.signature)};
  }

 private:
  std::unique_ptr<keys::Tpm2Device> tpm_;
};

}  // namespace

Result<std::unique_ptr<SasCredential>> SymmetricKeyCredential(std::string_view key_base64) {
  auto key = ossl::Base64Decode(key_base64);
  if (!key || key->empty()) {
    return std::unexpected(InvalidArgument("the symmetric key is not base64"));
  }
  keys::Secret secret(std::string_view(reinterpret_cast<const char*>(key->data()), key->size()));
  OPENSSL_cleanse(key->data(), key->size());
  return std::make_unique<SoftwareSasCredential>(std::move(secret));
}

Result<std::unique_ptr<TpmCredential>> OpenTpmCredential(std::string_view tcti) {
  DEVID_ASSIGN_OR_RETURN(auto tpm, keys::Tpm2Device::Open(tcti));
  return std::make_unique<Tpm2Credential>(std::move(tpm));
}

}  // namespace devid::sdk
