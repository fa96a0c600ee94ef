#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "ossl/unique_ptr.h"
#include "tpm/crypto.h"
#include "tpm/marshal.h"

namespace devid::tpm {

// TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3).
inline constexpr uint32_t kFixedTpm = 1u << 1;
inline constexpr uint32_t kFixedParent = 1u << 4;
inline constexpr uint32_t kSensitiveDataOrigin = 1u << 5;
inline constexpr uint32_t kUserWithAuth = 1u << 6;
inline constexpr uint32_t kAdminWithPolicy = 1u << 7;
inline constexpr uint32_t kNoDa = 1u << 10;
inline constexpr uint32_t kRestricted = 1u << 16;
inline constexpr uint32_t kDecrypt = 1u << 17;
inline constexpr uint32_t kSign = 1u << 18;

// RsaPublic is a parsed TPMT_PUBLIC of type TPM_ALG_RSA (TPM 2.0 Part 2 §12.2.4): what a verifier
// needs to encrypt to the key and to name it. Other key types are refused by the parser.
struct RsaPublic {
  Alg name_alg = Alg::kNull;
  uint32_t attributes = 0;
  Bytes auth_policy;
  Alg symmetric = Alg::kNull;  // TPMT_SYM_DEF_OBJECT.algorithm (kAes or kNull)
  uint16_t symmetric_bits = 0;
  Alg symmetric_mode = Alg::kNull;
  Alg scheme = Alg::kNull;       // TPMT_RSA_SCHEME.scheme
  Alg scheme_hash = Alg::kNull;  // its hashAlg, when the scheme has one
  uint16_t key_bits = 0;
  uint32_t exponent = 0;  // 0 means 65537 (Part 2 §12.2.3.5)
  Bytes modulus;          // unique.rsa
  Bytes tpmt;             // the TPMT_PUBLIC bytes as received (what Name hashes)

  // Name returns the object's Name: nameAlg || H_nameAlg(TPMT_PUBLIC) (TPM 2.0 Part 1 §16).
  Result<Bytes> Name() const;
  // Tpm2b returns the TPM2B_PUBLIC encoding (UINT16 size || TPMT_PUBLIC).
  Bytes Tpm2b() const { return B2(tpmt); }
  // OaepHash returns the hash a TPM uses for RSA secret sharing to this key: the key's OAEP
  // scheme hash when it has one, else its nameAlg (TPM 2.0 Part 1 §B.10.3).
  Alg OaepHash() const;
  // SameKey tells whether other has the same modulus and effective exponent.
  bool SameKey(const RsaPublic& other) const;
  // ToEvp returns the key as an OpenSSL public key. Fails with kInvalidArgument on an empty
  // modulus.
  Result<ossl::UniquePtr<EVP_PKEY>> ToEvp() const;
};

// ParseRsaPublic parses a TPM2B_PUBLIC (UINT16 size || TPMT_PUBLIC) holding an RSA key, as DPS
// carries endorsementKey and storageRootKey. It fails with kInvalidArgument naming the defect: a
// size that disagrees with the input, a non-RSA type, unknown parameters, trailing bytes, or a
// modulus whose length is not keyBits/8.
Result<RsaPublic> ParseRsaPublic(std::span<const uint8_t> tpm2b_public);

// ParseRsaPublicBase64 is ParseRsaPublic of standard base64 text.
Result<RsaPublic> ParseRsaPublicBase64(std::string_view base64);

// ParseRsaTpmtPublic parses a bare TPMT_PUBLIC (no size prefix).
Result<RsaPublic> ParseRsaTpmtPublic(std::span<const uint8_t> tpmt_public);

// MarshalRsaPublic encodes p's fields (ignoring p.tpmt) as a TPMT_PUBLIC.
Bytes MarshalRsaPublic(const RsaPublic& p);

// RegistrationIdFromEk returns Azure DPS's default registration ID for a TPM: the lowercase RFC
// 4648 base32 of SHA-256 of the EK's TPM2B_PUBLIC bytes (size prefix included), without padding
// (protocol notes §4.1).
std::string RegistrationIdFromEk(std::span<const uint8_t> ek_tpm2b_public);

}  // namespace devid::tpm
