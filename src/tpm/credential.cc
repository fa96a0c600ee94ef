#include "tpm/credential.h"

#include <openssl/crypto.h>

#include <string>

namespace devid::tpm {
namespace {

constexpr uint32_t kTpmCcDuplicate = 0x0000014B;
constexpr uint32_t kTpmCcPolicyCommandCode = 0x0000016C;

// The EK policy, PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile §B.3.3).
constexpr uint8_t kEkPolicy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                   0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                   0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

// StorageKey checks that key can be the target of a protection (a restricted decryption key with
// a symmetric definition: Part 1 §24.4 for credentials, §23.3.2 for duplication) and returns its
// symmetric key size in bits.
Result<uint32_t> ProtectionBits(const RsaPublic& key, std::string_view role) {
  if ((key.attributes & (kRestricted | kDecrypt)) != (kRestricted | kDecrypt)) {
    return std::unexpected(
        InvalidArgument(std::string(role) + " is not a restricted decryption key"));
  }
  if (key.symmetric != Alg::kAes || key.symmetric_mode != Alg::kCfb ||
      (key.symmetric_bits != 128 && key.symmetric_bits != 256)) {
    return std::unexpected(
        InvalidArgument(std::string(role) + " has no AES-128/256-CFB symmetric definition"));
  }
  return key.symmetric_bits;
}

// SecretSharing draws a seed of the parent's nameAlg digest size and encrypts it to the parent
// with RSA-OAEP under label (Part 1 §B.10.3).
struct Seed {
  Bytes seed;
  Bytes encrypted;
};

Result<Seed> ShareSeed(const RsaPublic& parent, std::string_view label, Random& random) {
  Seed s;
  s.seed = random.Bytes(DigestSize(parent.name_alg));
  DEVID_ASSIGN_OR_RETURN(auto evp, parent.ToEvp());
  DEVID_ASSIGN_OR_RETURN(s.encrypted,
                         RsaOaepEncrypt(evp.get(), parent.OaepHash(), Label(label), s.seed));
  return s;
}

// Protect is the outer wrapper shared by credentials and duplicates (Part 1 §22.4–22.5): the
// data is AES-CFB encrypted under KDFa(seed, "STORAGE", name) and integrity-protected by
// HMAC(KDFa(seed, "INTEGRITY"), encrypted || name); it returns TPM2B_DIGEST(hmac) || encrypted.
Result<Bytes> Protect(Alg hash, std::span<const uint8_t> seed, uint32_t sym_bits,
                      std::span<const uint8_t> name, std::span<const uint8_t> data) {
  DEVID_ASSIGN_OR_RETURN(Bytes sym_key, Kdfa(hash, seed, "STORAGE", name, {}, sym_bits));
  DEVID_ASSIGN_OR_RETURN(Bytes encrypted, AesCfbEncrypt(sym_key, data));
  OPENSSL_cleanse(sym_key.data(), sym_key.size());
  DEVID_ASSIGN_OR_RETURN(Bytes hmac_key, Kdfa(hash, seed, "INTEGRITY", {}, {},
                                              static_cast<uint32_t>(DigestSize(hash) * 8)));
  DEVID_ASSIGN_OR_RETURN(Bytes hmac, Hmac(hash, hmac_key, Concat(encrypted, name)));
  OPENSSL_cleanse(hmac_key.data(), hmac_key.size());
  return Writer().B2(hmac).Raw(encrypted).Take();
}

}  // namespace

Result<Credential> MakeCredential(const RsaPublic& ek, std::span<const uint8_t> object_name,
                                  std::span<const uint8_t> credential, Random& random) {
  DEVID_ASSIGN_OR_RETURN(uint32_t bits, ProtectionBits(ek, "the endorsement key"));
  if (credential.size() > DigestSize(ek.name_alg)) {
    return std::unexpected(InvalidArgument("the credential is longer than the EK's digest"));
  }
  DEVID_ASSIGN_OR_RETURN(Seed seed, ShareSeed(ek, "IDENTITY", random));
  // Part 1 §24.4: encIdentity = CFB(KDFa(seed, "STORAGE", Name), TPM2B_DIGEST(credential)).
  auto blob = Protect(ek.name_alg, seed.seed, bits, object_name, B2(credential));
  OPENSSL_cleanse(seed.seed.data(), seed.seed.size());
  if (!blob) return std::unexpected(blob.error());
  return Credential{std::move(*blob), std::move(seed.encrypted)};
}

Result<Duplicate> DuplicateForImport(const RsaPublic& new_parent,
                                     std::span<const uint8_t> object_name,
                                     std::span<const uint8_t> sensitive,
                                     std::span<const uint8_t> inner_key, Random& random) {
  DEVID_ASSIGN_OR_RETURN(uint32_t bits, ProtectionBits(new_parent, "the storage root key"));
  if (object_name.size() < 2) return std::unexpected(InvalidArgument("the object name is empty"));
  // The inner integrity uses the object's nameAlg (Part 1 §23.3.2.3), named in its Name's first
  // two bytes.
  Alg object_alg = static_cast<Alg>(object_name[0] << 8 | object_name[1]);
  DEVID_ASSIGN_OR_RETURN(Bytes integrity, Hash(object_alg, Concat(sensitive, object_name)));
  Bytes plain = Writer().B2(integrity).Raw(sensitive).Take();
  auto inner = AesCfbEncrypt(inner_key, plain);
  OPENSSL_cleanse(plain.data(), plain.size());
  if (!inner) return std::unexpected(inner.error());
  DEVID_ASSIGN_OR_RETURN(Seed seed, ShareSeed(new_parent, "DUPLICATE", random));
  auto outer = Protect(new_parent.name_alg, seed.seed, bits, object_name, *inner);
  OPENSSL_cleanse(seed.seed.data(), seed.seed.size());
  if (!outer) return std::unexpected(outer.error());
  return Duplicate{std::move(*outer), std::move(seed.encrypted)};
}

Result<HmacKeyObject> MakeHmacKeyObject(std::span<const uint8_t> key, Random& random) {
  HmacKeyObject object;
  Bytes seed_value = random.Bytes(32);
  // policy = PolicyCommandCode(TPM_CC_Duplicate) from an empty digest (Part 3 §23.11): lets the
  // owner duplicate the key, as the DPS service's identity keys do.
  Bytes zero(32, 0);
  DEVID_ASSIGN_OR_RETURN(
      Bytes policy,
      Hash(Alg::kSha256,
           Writer().Raw(zero).U32(kTpmCcPolicyCommandCode).U32(kTpmCcDuplicate).Take()));
  DEVID_ASSIGN_OR_RETURN(Bytes unique, Hash(Alg::kSha256, Concat(seed_value, key)));
  object.public_area = Writer()
                           .U16(static_cast<uint16_t>(Alg::kKeyedHash))
                           .U16(static_cast<uint16_t>(Alg::kSha256))
                           .U32(kSign | kUserWithAuth | kNoDa)
                           .B2(policy)
                           .U16(static_cast<uint16_t>(Alg::kHmac))
                           .U16(static_cast<uint16_t>(Alg::kSha256))
                           .B2(unique)
                           .Take();
  // TPMT_SENSITIVE (Part 2 §12.3.2.4): sensitiveType, authValue (empty), seedValue, bits.
  Bytes tpmt_sensitive =
      Writer().U16(static_cast<uint16_t>(Alg::kKeyedHash)).B2({}).B2(seed_value).B2(key).Take();
  object.sensitive = B2(tpmt_sensitive);
  OPENSSL_cleanse(tpmt_sensitive.data(), tpmt_sensitive.size());
  OPENSSL_cleanse(seed_value.data(), seed_value.size());
  DEVID_ASSIGN_OR_RETURN(Bytes digest, Hash(Alg::kSha256, object.public_area));
  object.name = Writer().U16(static_cast<uint16_t>(Alg::kSha256)).Raw(digest).Take();
  return object;
}

Result<Bytes> BuildActivationBlob(const RsaPublic& ek, const RsaPublic& srk,
                                  std::span<const uint8_t> hmac_key, Random& random,
                                  std::string_view uri) {
  DEVID_ASSIGN_OR_RETURN(HmacKeyObject id_key, MakeHmacKeyObject(hmac_key, random));
  // The C SDK imports with AES-128 (protocol notes §4.3), so the inner key is 16 bytes.
  Bytes inner_key = random.Bytes(16);
  auto dup = DuplicateForImport(srk, id_key.name, id_key.sensitive, inner_key, random);
  OPENSSL_cleanse(id_key.sensitive.data(), id_key.sensitive.size());
  if (!dup) {
    OPENSSL_cleanse(inner_key.data(), inner_key.size());
    return std::unexpected(dup.error());
  }
  auto srk_name = srk.Name();
  if (!srk_name) return std::unexpected(srk_name.error());
  auto credential = MakeCredential(ek, *srk_name, inner_key, random);
  Result<Bytes> encrypted_uri = Bytes();
  if (!uri.empty()) {
    encrypted_uri = AesCfbEncrypt(
        inner_key, std::span(reinterpret_cast<const uint8_t*>(uri.data()), uri.size()));
  }
  OPENSSL_cleanse(inner_key.data(), inner_key.size());
  if (!credential) return std::unexpected(credential.error());
  if (!encrypted_uri) return std::unexpected(encrypted_uri.error());
  return Writer()
      .B2(credential->credential_blob)
      .B2(credential->secret)
      .B2(dup->duplicate)
      .B2(dup->in_sym_seed)
      .B2(id_key.public_area)
      .B2(*encrypted_uri)
      .Take();
}

RsaPublic AzureEkTemplate() {
  RsaPublic p;
  p.name_alg = Alg::kSha256;
  p.attributes =
      kFixedTpm | kFixedParent | kSensitiveDataOrigin | kAdminWithPolicy | kRestricted | kDecrypt;
  p.auth_policy.assign(std::begin(kEkPolicy), std::end(kEkPolicy));
  p.symmetric = Alg::kAes;
  p.symmetric_bits = 128;
  p.symmetric_mode = Alg::kCfb;
  p.key_bits = 2048;
  return p;
}

RsaPublic AzureSrkTemplate() {
  RsaPublic p;
  p.name_alg = Alg::kSha256;
  p.attributes = kFixedTpm | kFixedParent | kSensitiveDataOrigin | kUserWithAuth | kNoDa |
                 kRestricted | kDecrypt;
  p.symmetric = Alg::kAes;
  p.symmetric_bits = 128;
  p.symmetric_mode = Alg::kCfb;
  p.key_bits = 2048;
  return p;
}

}  // namespace devid::tpm
