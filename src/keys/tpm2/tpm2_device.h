#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::keys {

// Persistent handles a DPS device uses (protocol notes §4.1; TCG TPM v2.0 Provisioning Guidance
// §7.8: 0x8100xxxx storage hierarchy, 0x8101xxxx endorsement hierarchy).
inline constexpr uint32_t kTpm2EkHandle = 0x81010001;
inline constexpr uint32_t kTpm2SrkHandle = 0x81000001;
inline constexpr uint32_t kTpm2IdentityKeyHandle = 0x81000100;
inline constexpr uint32_t kTpm2AttestationKeyHandle = 0x81000002;
// The NV index where a TPM's manufacturer stores the RSA EK certificate (TCG EK Credential
// Profile §2.2.1.5).
inline constexpr uint32_t kTpm2RsaEkCertificateIndex = 0x01c00002;

// Tpm2Quote is TPM2_Quote's output (TPM 2.0 Part 3 §18.4), each part marshalled as on the wire.
struct Tpm2Quote {
  std::vector<uint8_t> attest;     // TPMS_ATTEST (the contents of TPM2B_ATTEST): what was signed
  std::vector<uint8_t> signature;  // TPMT_SIGNATURE
};

// Tpm2EccCurve is a NIST curve the TPM makes ECDSA signing keys on (TPM 2.0 Part 2 §6.4).
enum class Tpm2EccCurve { kNistP256, kNistP384 };

// Tpm2EccPublicKey is an ECC key's public point as the TPM holds it (TPMS_ECC_POINT), with its
// coordinates big-endian and as long as the TPM returned them, and the object's TPMA_OBJECT.
struct Tpm2EccPublicKey {
  Tpm2EccCurve curve;
  std::vector<uint8_t> x;
  std::vector<uint8_t> y;
  uint32_t attributes = 0;
};

// Tpm2EcdsaSignature is TPMS_SIGNATURE_ECDSA's r and s, big-endian.
struct Tpm2EcdsaSignature {
  std::vector<uint8_t> r;
  std::vector<uint8_t> s;
};

// Tpm2Device is one TPM 2.0 driven through tpm2-tss ESAPI over a TCTI. Keys it creates or
// imports live in the TPM at persistent handles; what leaves it is public areas, MACs,
// signatures and what TPM2_ActivateCredential is meant to release. Every transient object and
// session it loads is flushed before the call returns, so it works without a resource manager
// (swtpm has three object slots). Not thread-safe: one TPM command at a time.
class Tpm2Device {
 public:
  // Open loads the TCTI named by tcti ("swtpm:host=127.0.0.1,port=2321", "device:/dev/tpmrm0",
  // "mssim:...", as Tss2_TctiLdr_Initialize takes it) and starts an ESAPI context; a TPM that was
  // not started yet gets TPM2_Startup(CLEAR). It fails with kUnavailable when the TPM cannot be
  // reached, naming the TCTI and the TSS error.
  static Result<std::unique_ptr<Tpm2Device>> Open(std::string_view tcti);

  ~Tpm2Device();
  Tpm2Device(const Tpm2Device&) = delete;
  Tpm2Device& operator=(const Tpm2Device&) = delete;

  // EndorsementKey returns the TPM2B_PUBLIC of the EK at kTpm2EkHandle, first creating it from
  // the TCG EK template L-1 (RSA-2048, AES-128-CFB, PolicySecret(TPM_RH_ENDORSEMENT); TCG EK
  // Credential Profile §B.3.3) and persisting it when the handle is empty. StorageRootKey does
  // the same for the SRK at kTpm2SrkHandle (protocol notes §4.1). Both fail with kUnavailable
  // when the TPM is gone and kInternal when it refuses.
  Result<std::vector<uint8_t>> EndorsementKey();
  Result<std::vector<uint8_t>> StorageRootKey();

  // ReadEndorsementKeyCertificate returns the DER certificate in NV index
  // kTpm2RsaEkCertificateIndex, without any padding after it, or an empty vector when the index
  // is not defined or never written (a TPM whose manufacturer issued none, such as a bare
  // simulator). It reads with the index's own empty authorization (TPMA_NV_AUTHREAD), else the
  // owner's. Fails with kFailedPrecondition when neither may read it, kUnavailable when the TPM is
  // gone.
  Result<std::vector<uint8_t>> ReadEndorsementKeyCertificate();

  // ImportActivationBlob installs the HMAC key a DPS service sent in blob (protocol notes §4.3):
  // TPM2_ActivateCredential with the EK (under a PolicySecret(endorsement) session) releases the
  // inner wrapper key bound to Name(SRK), TPM2_Import + TPM2_Load put the key under the SRK, and
  // TPM2_EvictControl persists it at handle, replacing what was there. The inner key crosses the
  // bus only inside a parameter-encryption session salted to the SRK. The EK and SRK must exist.
  // It fails with kInvalidArgument on a malformed blob, kUnauthenticated when this TPM cannot
  // activate or import it (the blob was made for another EK or SRK, or was altered), kUnavailable
  // when the TPM is gone.
  Status ImportActivationBlob(std::span<const uint8_t> blob,
                              uint32_t handle = kTpm2IdentityKeyHandle);

  // HmacSha256 computes HMAC-SHA256 of message inside the TPM (TPM2_HMAC) with the keyed-hash key
  // at handle. It fails with kNotFound when no key is there, kInvalidArgument when message is
  // longer than TPM2_MAX_DIGEST_BUFFER (1024) bytes.
  Result<std::array<uint8_t, 32>> HmacSha256(std::string_view message,
                                             uint32_t handle = kTpm2IdentityKeyHandle);

  // CreateAttestationKey returns the TPM2B_PUBLIC of an attestation key at handle: a restricted
  // RSA-2048 signing key with RSASSA-SHA256 under the SRK (TCG Provisioning Guidance AK
  // template), created and persisted when the handle is empty.
  Result<std::vector<uint8_t>> CreateAttestationKey(uint32_t handle = kTpm2AttestationKeyHandle);

  // ActivateCredential runs TPM2_ActivateCredential (TPM 2.0 Part 3 §12.5) with the EK as the
  // decryption key and the object at object_handle as the one the credential names, and returns
  // the credential. id_object and encrypted_secret are TPM2B_ID_OBJECT and
  // TPM2B_ENCRYPTED_SECRET, size prefixes included (TPM2_MakeCredential's outputs). A verifier
  // uses it to learn that an AK is resident in the TPM holding the EK. Fails with
  // kInvalidArgument on malformed input and kUnauthenticated when the TPM refuses the credential.
  Result<std::vector<uint8_t>> ActivateCredential(uint32_t object_handle,
                                                  std::span<const uint8_t> id_object,
                                                  std::span<const uint8_t> encrypted_secret);

  // Quote signs the SHA-256 bank's pcrs (indices 0-23) and nonce (at most 64 bytes, carried as
  // extraData) with the attestation key at ak_handle (TPM2_Quote, Part 3 §18.4). Fails with
  // kInvalidArgument on a bad PCR index or nonce, kNotFound when no key is at ak_handle.
  Result<Tpm2Quote> Quote(std::span<const uint32_t> pcrs, std::span<const uint8_t> nonce,
                          uint32_t ak_handle = kTpm2AttestationKeyHandle);

  // ReadPcrs returns the SHA-256 bank's values of pcrs, in order. Fails with kInvalidArgument
  // on a bad PCR index.
  Result<std::vector<std::vector<uint8_t>>> ReadPcrs(std::span<const uint32_t> pcrs);

  // CreateEccSigningKey makes an unrestricted ECDSA signing key on curve under the SRK (created
  // first when missing) and persists it at handle: fixedTPM, fixedParent, sensitiveDataOrigin,
  // userWithAuth and sign, so the TPM generated it and it can never be duplicated out (TPM 2.0
  // Part 1 §27.2, §23.3). Its scheme is left open so that TPM2_Sign names the hash. Fails with
  // kAlreadyExists when handle holds an object, kUnavailable when the TPM is gone, kInternal when
  // it refuses (e.g. a curve it lacks).
  Result<Tpm2EccPublicKey> CreateEccSigningKey(uint32_t handle, Tpm2EccCurve curve);

  // ReadEccSigningKey returns the public key at handle. Fails with kNotFound when no object is
  // there, kInvalidArgument when it is not an unrestricted ECC signing key on a Tpm2EccCurve.
  Result<Tpm2EccPublicKey> ReadEccSigningKey(uint32_t handle);

  // SignEcdsa signs digest with the key at handle (TPM2_Sign, Part 3 §20.2, scheme ECDSA with the
  // hash whose size digest has: SHA-256 for 32 bytes, SHA-384 for 48). An unrestricted key needs
  // no hash ticket. Fails with kInvalidArgument for another digest size, kNotFound when no key is
  // at handle, kUnavailable when the TPM is gone.
  Result<Tpm2EcdsaSignature> SignEcdsa(uint32_t handle, std::span<const uint8_t> digest);

  // DeleteEccSigningKey removes the key at handle from the TPM (TPM2_EvictControl, Part 3
  // §28.5), for good. It refuses, as ReadEccSigningKey fails, anything but such a key, so that a
  // wrong handle cannot take the EK or SRK.
  Status DeleteEccSigningKey(uint32_t handle);

 private:
  class Impl;
  explicit Tpm2Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace devid::keys
