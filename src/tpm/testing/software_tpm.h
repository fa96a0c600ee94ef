#pragma once

// Test-only: the device half of the DPS TPM flow in software, so unit tests can check that what
// the service builds is what a TPM accepts. SoftwareTpm holds an EK and an SRK made by OpenSSL
// and implements the TPM's side of TPM2_ActivateCredential (TPM 2.0 Part 3 §12.5) and
// TPM2_Import (Part 3 §13.3) with the same checks a TPM makes, in the order it makes them.

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <string>

#include "base/result.h"
#include "ossl/base64.h"
#include "ossl/error.h"
#include "ossl/mac.h"
#include "ossl/unique_ptr.h"
#include "tpm/credential.h"
#include "tpm/crypto.h"
#include "tpm/marshal.h"
#include "tpm/public_area.h"

namespace devid::tpm::testing {

// GenerateRsaKey returns a fresh RSA-2048 key pair (exponent 65537); aborts on failure.
inline ossl::UniquePtr<EVP_PKEY> GenerateRsaKey() {
  ossl::UniquePtr<EVP_PKEY> key(EVP_RSA_gen(2048));
  if (!key) std::abort();
  return key;
}

// PublicFromKey fills template_area's modulus from key and re-marshals it.
inline RsaPublic PublicFromKey(RsaPublic template_area, EVP_PKEY* key) {
  BIGNUM* n = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1) std::abort();
  ossl::UniquePtr<BIGNUM> owned(n);
  template_area.modulus.resize(BN_num_bytes(n));
  BN_bn2bin(n, template_area.modulus.data());
  template_area.exponent = 0;
  template_area.tpmt = MarshalRsaPublic(template_area);
  return template_area;
}

// Unprotect reverses the outer wrapper (Part 1 §22.4–22.5): checks the HMAC, then decrypts.
inline Result<Bytes> Unprotect(Alg hash, std::span<const uint8_t> seed, uint32_t sym_bits,
                               std::span<const uint8_t> name, std::span<const uint8_t> blob) {
  Reader r(blob);
  DEVID_ASSIGN_OR_RETURN(auto hmac, r.B2("integrity HMAC"));
  DEVID_ASSIGN_OR_RETURN(auto encrypted, r.Raw(r.remaining(), "encrypted data"));
  DEVID_ASSIGN_OR_RETURN(Bytes hmac_key, Kdfa(hash, seed, "INTEGRITY", {}, {},
                                              static_cast<uint32_t>(DigestSize(hash) * 8)));
  DEVID_ASSIGN_OR_RETURN(Bytes expected, Hmac(hash, hmac_key, Concat(encrypted, name)));
  if (!ossl::ConstantTimeEquals(expected, hmac)) {
    return std::unexpected(Unauthenticated("TPM_RC_INTEGRITY: outer HMAC mismatch"));
  }
  DEVID_ASSIGN_OR_RETURN(Bytes sym_key, Kdfa(hash, seed, "STORAGE", name, {}, sym_bits));
  return AesCfbDecrypt(sym_key, encrypted);
}

// Activation is what a device recovers from a DPS activation blob.
struct Activation {
  Bytes inner_key;
  Bytes hmac_key;       // the identity key's sensitive bits: the device's SAS key
  Bytes public_area;    // the identity key's TPMT_PUBLIC
  Bytes encrypted_uri;  // the blob's last field, as sent
};

class SoftwareTpm {
 public:
  SoftwareTpm()
      : ek_key_(GenerateRsaKey()),
        srk_key_(GenerateRsaKey()),
        ek_(PublicFromKey(AzureEkTemplate(), ek_key_.get())),
        srk_(PublicFromKey(AzureSrkTemplate(), srk_key_.get())) {}

  const RsaPublic& ek() const { return ek_; }
  const RsaPublic& srk() const { return srk_; }
  std::string EkBase64() const { return ossl::Base64Encode(ek_.Tpm2b()); }
  std::string SrkBase64() const { return ossl::Base64Encode(srk_.Tpm2b()); }
  std::string RegistrationId() const { return RegistrationIdFromEk(ek_.Tpm2b()); }

  // ActivateCredential recovers the credential bound to object_name (Part 3 §12.5.1).
  Result<Bytes> ActivateCredential(std::span<const uint8_t> object_name,
                                   std::span<const uint8_t> credential_blob,
                                   std::span<const uint8_t> secret) const {
    DEVID_ASSIGN_OR_RETURN(
        Bytes seed, RsaOaepDecrypt(ek_key_.get(), ek_.OaepHash(), Label("IDENTITY"), secret));
    DEVID_ASSIGN_OR_RETURN(Bytes plain, Unprotect(ek_.name_alg, seed, ek_.symmetric_bits,
                                                  object_name, credential_blob));
    Reader r(plain);
    DEVID_ASSIGN_OR_RETURN(auto credential, r.B2("credential"));
    if (!r.done()) return std::unexpected(InvalidArgument("TPM_RC_SIZE: credential trailer"));
    return Bytes(credential.begin(), credential.end());
  }

  // Import unwraps a duplicate for the SRK and returns the TPMT_SENSITIVE's sensitive bits after
  // checking the inner integrity and that unique = H(seedValue || bits) (Part 3 §13.3.1,
  // Part 1 §23.3.2.3).
  Result<Bytes> Import(std::span<const uint8_t> inner_key, std::span<const uint8_t> public_area,
                       std::span<const uint8_t> duplicate,
                       std::span<const uint8_t> in_sym_seed) const {
    DEVID_ASSIGN_OR_RETURN(Bytes seed, RsaOaepDecrypt(srk_key_.get(), srk_.OaepHash(),
                                                      Label("DUPLICATE"), in_sym_seed));
    DEVID_ASSIGN_OR_RETURN(Bytes digest, Hash(Alg::kSha256, public_area));
    Bytes name = Writer().U16(static_cast<uint16_t>(Alg::kSha256)).Raw(digest).Take();
    DEVID_ASSIGN_OR_RETURN(Bytes inner,
                           Unprotect(srk_.name_alg, seed, srk_.symmetric_bits, name, duplicate));
    DEVID_ASSIGN_OR_RETURN(Bytes plain, AesCfbDecrypt(inner_key, inner));
    Reader r(plain);
    DEVID_ASSIGN_OR_RETURN(auto integrity, r.B2("inner integrity"));
    DEVID_ASSIGN_OR_RETURN(auto sensitive, r.Raw(r.remaining(), "sensitive"));
    DEVID_ASSIGN_OR_RETURN(Bytes expected, Hash(Alg::kSha256, Concat(sensitive, name)));
    if (!ossl::ConstantTimeEquals(expected, integrity)) {
      return std::unexpected(Unauthenticated("TPM_RC_INTEGRITY: inner integrity mismatch"));
    }
    Reader s(sensitive);
    DEVID_ASSIGN_OR_RETURN(auto tpmt, s.B2("TPM2B_SENSITIVE"));
    Reader t(tpmt);
    DEVID_ASSIGN_OR_RETURN(uint16_t type, t.U16("sensitiveType"));
    DEVID_ASSIGN_OR_RETURN(auto auth, t.B2("authValue"));
    DEVID_ASSIGN_OR_RETURN(auto seed_value, t.B2("seedValue"));
    DEVID_ASSIGN_OR_RETURN(auto bits, t.B2("sensitive"));
    if (type != static_cast<uint16_t>(Alg::kKeyedHash) || !auth.empty() || !t.done()) {
      return std::unexpected(InvalidArgument("TPM_RC_TYPE: not a keyed-hash sensitive area"));
    }
    // The public area's unique is its last TPM2B: H(seedValue || bits).
    DEVID_ASSIGN_OR_RETURN(Bytes unique, Hash(Alg::kSha256, Concat(seed_value, bits)));
    if (public_area.size() < 34 ||
        !std::equal(unique.begin(), unique.end(), public_area.end() - 32)) {
      return std::unexpected(InvalidArgument("TPM_RC_BINDING: unique does not match"));
    }
    return Bytes(bits.begin(), bits.end());
  }

  // Activate runs the whole device side on a DPS activation blob (protocol notes §4.3).
  Result<Activation> Activate(std::span<const uint8_t> blob) const {
    Reader r(blob);
    DEVID_ASSIGN_OR_RETURN(auto id_object, r.B2("TPM2B_ID_OBJECT"));
    DEVID_ASSIGN_OR_RETURN(auto secret, r.B2("TPM2B_ENCRYPTED_SECRET"));
    DEVID_ASSIGN_OR_RETURN(auto duplicate, r.B2("TPM2B_PRIVATE"));
    DEVID_ASSIGN_OR_RETURN(auto in_sym_seed, r.B2("TPM2B_ENCRYPTED_SECRET"));
    DEVID_ASSIGN_OR_RETURN(auto public_area, r.B2("TPM2B_PUBLIC"));
    DEVID_ASSIGN_OR_RETURN(auto uri, r.B2("TPM2B_DATA"));
    if (!r.done()) return std::unexpected(InvalidArgument("bytes after the activation blob"));
    Activation out;
    DEVID_ASSIGN_OR_RETURN(Bytes srk_name, srk_.Name());
    DEVID_ASSIGN_OR_RETURN(out.inner_key, ActivateCredential(srk_name, id_object, secret));
    DEVID_ASSIGN_OR_RETURN(out.hmac_key,
                           Import(out.inner_key, public_area, duplicate, in_sym_seed));
    out.public_area.assign(public_area.begin(), public_area.end());
    out.encrypted_uri.assign(uri.begin(), uri.end());
    return out;
  }

  // ActivateBase64 is Activate of base64 text, returning the HMAC key as base64.
  Result<std::string> ActivateBase64(std::string_view blob_base64) const {
    auto blob = ossl::Base64Decode(blob_base64);
    if (!blob) return std::unexpected(blob.error());
    DEVID_ASSIGN_OR_RETURN(Activation a, Activate(*blob));
    return ossl::Base64Encode(a.hmac_key);
  }

 private:
  ossl::UniquePtr<EVP_PKEY> ek_key_;
  ossl::UniquePtr<EVP_PKEY> srk_key_;
  RsaPublic ek_;
  RsaPublic srk_;
};

}  // namespace devid::tpm::testing
