#pragma once

// The device SDK's credentials: what a device proves its identity with, held so that the
// application never touches the key bytes.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "devid/device_key.h"

namespace devid::sdk {

// SasCredential signs shared access signatures (protocol notes §2) with a symmetric key that
// stays inside the credential: in memory for a software key, inside the TPM for a TPM key.
class SasCredential {
 public:
  virtual ~SasCredential() = default;

  // HmacSha256 returns HMAC-SHA256(key, message). It fails with the key store's error
  // (kUnavailable when a TPM is gone, kNotFound when it holds no key yet).
  virtual Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message) = 0;
};

// TpmQuote is a TPM2_Quote's output as a verifier takes it: the signed TPMS_ATTEST and its
// TPMT_SIGNATURE, both marshalled as on the wire (tpm2_quote -m and -s write the same bytes).
struct TpmQuote {
  std::vector<uint8_t> attest;
  std::vector<uint8_t> signature;
};

// TpmCredential is a device's TPM as the DPS TPM attestation needs it (protocol notes §4): its
// endorsement and storage root keys, and the identity key the service sends wrapped for them.
// HmacSha256 signs with that identity key once ActivateIdentityKey has installed it. The EK
// certificate and the attestation key serve devid's extensions (EK certificates, measured boot).
class TpmCredential : public SasCredential {
 public:
  // EndorsementKey and StorageRootKey return the TPM2B_PUBLIC of the EK and SRK at Azure's
  // persistent handles (0x81010001, 0x81000001), creating them with the standard templates when
  // absent. They fail with kUnavailable when the TPM cannot be reached.
  virtual Result<std::vector<uint8_t>> EndorsementKey() = 0;
  virtual Result<std::vector<uint8_t>> StorageRootKey() = 0;

  // ActivateIdentityKey installs the HMAC key wrapped in a DPS activation blob (protocol notes
  // §4.3) at 0x81000100, replacing the previous one; the key never leaves the TPM. It fails with
  // kUnauthenticated when the blob was not made for this TPM, kInvalidArgument when malformed.
  virtual Status ActivateIdentityKey(std::span<const uint8_t> activation_blob) = 0;

  // EndorsementKeyCertificate returns the DER certificate of the RSA EK that the TPM's
  // manufacturer wrote to NV index 0x01c00002, or an empty vector when the TPM holds none. It
  // fails with kUnavailable when the TPM cannot be reached.
  virtual Result<std::vector<uint8_t>> EndorsementKeyCertificate() = 0;

  // AttestationKey returns the TPM2B_PUBLIC of the attestation key (AK) at 0x81000002, a
  // restricted RSA-2048 RSASSA-SHA256 signing key under the SRK, creating and persisting it when
  // absent. Fails with kUnavailable when the TPM cannot be reached.
  virtual Result<std::vector<uint8_t>> AttestationKey() = 0;

  // ActivateAttestationKeyCredential runs TPM2_ActivateCredential with the EK on credential
  // (TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET, a MakeCredential to the EK for the AK's Name) and
  // returns the secret, which the TPM releases only when it holds both the EK and that AK. Fails
  // with kInvalidArgument when credential is malformed, kUnauthenticated when this TPM cannot
  // activate it.
  virtual Result<std::vector<uint8_t>> ActivateAttestationKeyCredential(
      std::span<const uint8_t> credential) = 0;

  // Quote signs the SHA-256 bank's pcrs (0-23) and nonce (at most 64 bytes) with the AK
  // (TPM2_Quote). Fails with kInvalidArgument on a bad PCR or nonce, kNotFound without an AK.
  virtual Result<TpmQuote> Quote(std::span<const uint32_t> pcrs,
                                 std::span<const uint8_t> nonce) = 0;
};

// SymmetricKeyCredential returns a software SasCredential holding the base64 key (an individual
// enrollment's key or a group-derived device key), kept in memory that is cleansed when the
// credential is destroyed. Fails with kInvalidArgument when key_base64 is not base64 or empty.
Result<std::unique_ptr<SasCredential>> SymmetricKeyCredential(std::string_view key_base64);

// OpenPkcs11SasCredential opens a SasCredential whose key is a secret key in a PKCS #11 token,
// named by uri (RFC 7512: `pkcs11:token=T;object=O?pin-source=FILE[&module-path=LIB]`), as
// ImportPkcs11SasKey stored it: every HMAC is computed inside the token (CKM_SHA256_HMAC) and the
// key never enters this process. default_module_path serves URIs without module-path. Fails with
// kInvalidArgument for a malformed URI or without a module, kNotFound when the module, token or
// key is missing, and kPermissionDenied on a wrong PIN.
Result<std::unique_ptr<SasCredential>> OpenPkcs11SasCredential(
    std::string_view uri, std::string_view default_module_path = "");

// ImportPkcs11SasKey stores the base64 symmetric key in the PKCS #11 token at uri as a sensitive,
// non-extractable secret key that can only compute HMACs, cleansing the decoded bytes, and
// returns the key's URI with its CKA_ID (a pin-value redacted). Fails with kInvalidArgument when
// key_base64 is not base64 or has fewer than 32 bytes, kAlreadyExists when the token holds a
// secret key with that label or id, else as OpenPkcs11SasCredential.
Result<std::string> ImportPkcs11SasKey(std::string_view uri, std::string_view key_base64,
                                       std::string_view default_module_path = "");

// X509Credential is a device's X.509 identity for mutual TLS (protocol notes §3): a certificate
// chain, leaf first, and the private key the leaf certifies, held in its key store and used
// there. Copies share the key.
class X509Credential {
 public:
  // Open reads certificate_chain_pem (leaf first, then intermediates) and opens the key at key_uri
  // (OpenDeviceKey). Fails with kInvalidArgument when the chain does not parse or its leaf does
  // not certify that key, else as OpenDeviceKey.
  static Result<X509Credential> Open(std::string certificate_chain_pem, std::string_view key_uri,
                                     const DeviceKeyOptions& options = {});

  const std::string& certificate_chain_pem() const { return certificate_chain_pem_; }
  // common_name is the leaf's subject CN, which DPS takes as the registration ID.
  const std::string& common_name() const { return common_name_; }
  // key signs inside its store; the SDK's TLS connections use it, and it keeps the store open.
  const std::shared_ptr<const keys::Key>& key() const { return key_; }

 private:
  X509Credential(std::string chain, std::string common_name, std::shared_ptr<const keys::Key> key)
      : certificate_chain_pem_(std::move(chain)),
        common_name_(std::move(common_name)),
        key_(std::move(key)) {}

  std::string certificate_chain_pem_;
  std::string common_name_;
  std::shared_ptr<const keys::Key> key_;
};

// OpenTpmCredential opens the TPM reached through tcti (tpm2-tss TCTI configuration, e.g.
// "swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0"). Fails with kUnavailable when the
// TPM cannot be reached.
Result<std::unique_ptr<TpmCredential>> OpenTpmCredential(std::string_view tcti);

}  // namespace devid::sdk
