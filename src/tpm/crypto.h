#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"
#include "tpm/marshal.h"

namespace devid::tpm {

// TPM_ALG_ID values this library uses (TPM 2.0 Part 2 §6.3).
enum class Alg : uint16_t {
  kRsa = 0x0001,
  kSha1 = 0x0004,
  kHmac = 0x0005,
  kAes = 0x0006,
  kKeyedHash = 0x0008,
  kSha256 = 0x000B,
  kSha384 = 0x000C,
  kSha512 = 0x000D,
  kNull = 0x0010,
  kRsassa = 0x0014,
  kRsaes = 0x0015,
  kRsapss = 0x0016,
  kOaep = 0x0017,
  kCfb = 0x0043,
};

// DigestSize returns the output size in bytes of a TPM hash algorithm, or 0 when alg is not one
// of SHA-1, SHA-256, SHA-384, SHA-512.
size_t DigestSize(Alg alg);

// DigestName returns OpenSSL's name for a TPM hash algorithm ("SHA256"), or nullptr when alg
// is not one of SHA-1, SHA-256, SHA-384, SHA-512.
const char* DigestName(Alg alg);

// Hash returns H_alg(data). Fails with kInvalidArgument for an unsupported algorithm.
Result<Bytes> Hash(Alg alg, std::span<const uint8_t> data);

// Hmac returns HMAC_alg(key, data). Fails with kInvalidArgument for an unsupported algorithm.
Result<Bytes> Hmac(Alg alg, std::span<const uint8_t> key, std::span<const uint8_t> data);

// Kdfa is the TPM's SP 800-108 counter-mode KDF with HMAC (TPM 2.0 Part 1 §11.4.10.2):
// the concatenation over i = 1.. of HMAC(key, u32(i) || label || 0x00 || context_u ||
// context_v || u32(bits)), truncated to ceil(bits/8) bytes with the unused high bits of the first
// byte cleared. label is given without its terminating NUL (one is appended unless it already
// ends in one); bits == 0 yields no bytes. Fails with kInvalidArgument for an unsupported hash.
Result<Bytes> Kdfa(Alg hash, std::span<const uint8_t> key, std::string_view label,
                   std::span<const uint8_t> context_u, std::span<const uint8_t> context_v,
                   uint32_t bits);

// Kdfe is the TPM's SP 800-56A concatenation KDF (TPM 2.0 Part 1 §11.4.10.3): the concatenation
// over i = 1.. of H(u32(i) || z || label || 0x00 || party_u || party_v), truncated like Kdfa.
Result<Bytes> Kdfe(Alg hash, std::span<const uint8_t> z, std::string_view label,
                   std::span<const uint8_t> party_u, std::span<const uint8_t> party_v,
                   uint32_t bits);

// AesCfbEncrypt encrypts data with AES-CFB128 under key (16, 24 or 32 bytes) and an all-zero IV,
// the TPM's symmetric parameter encryption for credential and duplication wrappers (TPM 2.0
// Part 1 §24.4, §23.3.2). AesCfbDecrypt is its inverse. Fail with kInvalidArgument on a bad key
// size.
Result<Bytes> AesCfbEncrypt(std::span<const uint8_t> key, std::span<const uint8_t> data);
Result<Bytes> AesCfbDecrypt(std::span<const uint8_t> key, std::span<const uint8_t> data);

// RsaOaepEncrypt encrypts data to key with RSA-OAEP under hash, MGF1 with the same hash, and
// the label bytes as given (TPM secret sharing passes "IDENTITY\0", "DUPLICATE\0", "SECRET\0";
// TPM 2.0 Part 1 §B.10.3). The OAEP seed comes from OpenSSL's CSPRNG. Fails with
// kInvalidArgument when the data is too long for the key.
Result<Bytes> RsaOaepEncrypt(EVP_PKEY* key, Alg hash, std::span<const uint8_t> label,
                             std::span<const uint8_t> data);

// RsaOaepDecrypt is the inverse with a private key; fails with kInvalidArgument on a ciphertext
// that does not decrypt (wrong key, label or padding).
Result<Bytes> RsaOaepDecrypt(EVP_PKEY* key, Alg hash, std::span<const uint8_t> label,
                             std::span<const uint8_t> ciphertext);

// Label returns a TPM secret-sharing label with its terminating NUL ("IDENTITY" →
// "IDENTITY\0").
Bytes Label(std::string_view name);

}  // namespace devid::tpm
