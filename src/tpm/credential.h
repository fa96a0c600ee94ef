#pragma once

#include <span>
#include <string_view>

#include "base/random.h"
#include "base/result.h"
#include "tpm/marshal.h"
#include "tpm/public_area.h"

namespace devid::tpm {

// Credential is TPM2_MakeCredential's output (TPM 2.0 Part 3 §12.6, Part 1 §24).
struct Credential {
  Bytes credential_blob;  // TPM2B_ID_OBJECT contents: TPM2B_DIGEST integrityHMAC || encIdentity
  Bytes secret;           // TPM2B_ENCRYPTED_SECRET contents: the seed, RSA-OAEP to the EK
};

// MakeCredential protects credential (at most the EK nameAlg's digest size) so that only the TPM
// holding the private part of ek, and an object named object_name loaded in it, can recover it
// with TPM2_ActivateCredential (Part 1 §24.4–24.5). The seed comes from random; the OAEP padding
// from OpenSSL. Fails with kInvalidArgument when ek is not a restricted decryption key with an
// AES-CFB symmetric definition, or credential is too long.
Result<Credential> MakeCredential(const RsaPublic& ek, std::span<const uint8_t> object_name,
                                  std::span<const uint8_t> credential, Random& random);

// Duplicate is a software-made duplication blob for TPM2_Import (Part 1 §23.3, Part 3 §13.3).
struct Duplicate {
  Bytes duplicate;    // TPM2B_PRIVATE contents: TPM2B_DIGEST outerHMAC || outer-wrapped inner blob
  Bytes in_sym_seed;  // TPM2B_ENCRYPTED_SECRET contents: the seed, RSA-OAEP to the new parent
};

// DuplicateForImport wraps sensitive (a marshalled TPM2B_SENSITIVE) for the object named
// object_name under new_parent: the inner wrapper is AES-CFB with inner_key (its size sets the
// AES key size Import must be told), the outer wrapper is derived from a random seed encrypted
// to new_parent with the "DUPLICATE" label (Part 1 §23.3.2). Fails with kInvalidArgument when
// new_parent is not a restricted decryption key with an AES-CFB symmetric definition.
Result<Duplicate> DuplicateForImport(const RsaPublic& new_parent,
                                     std::span<const uint8_t> object_name,
                                     std::span<const uint8_t> sensitive,
                                     std::span<const uint8_t> inner_key, Random& random);

// HmacKeyObject is a TPM keyed-hash (HMAC-SHA256) object made outside the TPM.
struct HmacKeyObject {
  Bytes public_area;  // TPMT_PUBLIC
  Bytes sensitive;    // TPM2B_SENSITIVE
  Bytes name;
};

// MakeHmacKeyObject builds the identity key the DPS service gives a TPM device (protocol notes
// §4.4): KEYEDHASH, nameAlg SHA-256, sign|userWithAuth|noDA, authPolicy
// PolicyCommandCode(TPM_CC_Duplicate), scheme HMAC-SHA256, unique = SHA-256(seedValue || key),
// with a 32-byte seedValue from random.
Result<HmacKeyObject> MakeHmacKeyObject(std::span<const uint8_t> key, Random& random);

// BuildActivationBlob returns the DPS TPM activation blob (protocol notes §4.3–4.4) that hands
// hmac_key to the TPM holding ek's private part, as a key under srk:
//   TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET (IDENTITY) || TPM2B_PRIVATE ||
//   TPM2B_ENCRYPTED_SECRET (DUPLICATE) || TPM2B_PUBLIC || TPM2B_DATA (AES-CFB(innerKey, uri))
// The credential is a fresh 16-byte inner-wrapper key, bound to Name(srk); the duplicate is the
// HMAC key object wrapped for srk. All secrets but the OAEP padding come from random. Fails with
// kInvalidArgument when ek or srk is not a restricted RSA decryption key with AES-CFB.
Result<Bytes> BuildActivationBlob(const RsaPublic& ek, const RsaPublic& srk,
                                  std::span<const uint8_t> hmac_key, Random& random,
                                  std::string_view uri = "");

// AzureEkTemplate returns the public area of the EK DPS devices create at 0x81010001 (TPM EK
// profile template L-1: RSA-2048, SHA-256, AES-128-CFB, PolicySecret(TPM_RH_ENDORSEMENT)) with an
// empty modulus; AzureSrkTemplate the SRK at 0x81000001 (protocol notes §4.1).
RsaPublic AzureEkTemplate();
RsaPublic AzureSrkTemplate();

}  // namespace devid::tpm
