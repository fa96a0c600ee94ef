#include "tpm/crypto.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <string>

#include "ossl/error.h"
#include "ossl/unique_ptr.h"

namespace devid::tpm {

const char* DigestName(Alg alg) {
  switch (alg) {
    case Alg::kSha1:
      return "SHA1";
    case Alg::kSha256:
      return "SHA256";
    case Alg::kSha384:
      return "SHA384";
    case Alg::kSha512:
      return "SHA512";
    default:
      return nullptr;
  }
}

namespace {

Error UnsupportedHash(Alg alg) {
  return InvalidArgument("TPM hash algorithm 0x" + [&] {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04x", static_cast<unsigned>(alg));
    return std::string(buf);
  }() + " is not supported (SHA-1, SHA-256, SHA-384, SHA-512 are)");
}

void AppendU32(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// Truncate keeps ceil(bits/8) bytes and clears the first byte's unused high bits (TPM 2.0
// Part 1 §11.4.10.1: the KDF output is the rightmost bits).
void Truncate(Bytes& stream, uint32_t bits) {
  stream.resize((bits + 7) / 8);
  if (bits % 8 != 0) stream[0] &= static_cast<uint8_t>((1u << (bits % 8)) - 1);
}

Result<Bytes> AesCfb(std::span<const uint8_t> key, std::span<const uint8_t> data, bool encrypt) {
  const EVP_CIPHER* cipher = nullptr;
  switch (key.size()) {
    case 16:
      cipher = EVP_aes_128_cfb128();
      break;
    case 24:
      cipher = EVP_aes_192_cfb128();
      break;
    case 32:
      cipher = EVP_aes_256_cfb128();
      break;
    default:
      return std::unexpected(InvalidArgument("AES-CFB key must be 16, 24 or 32 bytes, not " +
                                             std::to_string(key.size())));
  }
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  const uint8_t iv[16] = {};
  Bytes out(data.size() + 16);
  int n = 0, m = 0;
  if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), iv, encrypt ? 1 : 0) != 1 ||
      EVP_CipherUpdate(ctx.get(), out.data(), &n, data.data(), static_cast<int>(data.size())) !=
          1 ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + n, &m) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("AES-CFB"));
  }
  out.resize(static_cast<size_t>(n + m));
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY_CTX>> OaepContext(EVP_PKEY* key, Alg hash,
                                                  std::span<const uint8_t> label, bool encrypt) {
  const char* md = DigestName(hash);
  if (md == nullptr) return std::unexpected(UnsupportedHash(hash));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx ||
      (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), md, nullptr) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), md, nullptr) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("setting up RSA-OAEP"));
  }
  if (!label.empty()) {
    // The context takes ownership of the label copy on success.
    void* copy = OPENSSL_memdup(label.data(), label.size());
    if (copy == nullptr ||
        EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), copy, static_cast<int>(label.size())) <= 0) {
      OPENSSL_free(copy);
      return std::unexpected(ossl::ErrorFromQueue("setting the RSA-OAEP label"));
    }
  }
  return ctx;
}

}  // namespace

size_t DigestSize(Alg alg) {
  switch (alg) {
    case Alg::kSha1:
      return 20;
    case Alg::kSha256:
      return 32;
    case Alg::kSha384:
      return 48;
    case Alg::kSha512:
      return 64;
    default:
      return 0;
  }
}

Result<Bytes> Hash(Alg alg, std::span<const uint8_t> data) {
  const char* name = DigestName(alg);
  if (name == nullptr) return std::unexpected(UnsupportedHash(alg));
  Bytes out(EVP_MAX_MD_SIZE);
  size_t len = 0;
  if (EVP_Q_digest(nullptr, name, nullptr, data.data(), data.size(), out.data(), &len) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("hashing"));
  }
  out.resize(len);
  return out;
}

Result<Bytes> Hmac(Alg alg, std::span<const uint8_t> key, std::span<const uint8_t> data) {
  const char* name = DigestName(alg);
  if (name == nullptr) return std::unexpected(UnsupportedHash(alg));
  Bytes out(EVP_MAX_MD_SIZE);
  size_t len = 0;
  // EVP_Q_mac rejects a NULL key pointer even for an empty key.
  static const uint8_t kEmpty[1] = {0};
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, name, nullptr, key.empty() ? kEmpty : key.data(),
                key.size(), data.data(), data.size(), out.data(), out.size(), &len) == nullptr) {
    return std::unexpected(ossl::ErrorFromQueue("computing an HMAC"));
  }
  out.resize(len);
  return out;
}

Result<Bytes> Kdfa(Alg hash, std::span<const uint8_t> key, std::string_view label,
                   std::span<const uint8_t> context_u, std::span<const uint8_t> context_v,
                   uint32_t bits) {
  if (DigestSize(hash) == 0) return std::unexpected(UnsupportedHash(hash));
  Bytes fixed;  // label || 0x00 || contextU || contextV || u32(bits)
  fixed.insert(fixed.end(), label.begin(), label.end());
  if (label.empty() || label.back() != '\0') fixed.push_back(0);
  fixed.insert(fixed.end(), context_u.begin(), context_u.end());
  fixed.insert(fixed.end(), context_v.begin(), context_v.end());
  AppendU32(fixed, bits);
  Bytes stream;
  for (uint32_t i = 1; stream.size() * 8 < bits; ++i) {
    Bytes block;
    AppendU32(block, i);
    block.insert(block.end(), fixed.begin(), fixed.end());
    DEVID_ASSIGN_OR_RETURN(Bytes mac, Hmac(hash, key, block));
    stream.insert(stream.end(), mac.begin(), mac.end());
  }
  Truncate(stream, bits);
  return stream;
}

Result<Bytes> Kdfe(Alg hash, std::span<const uint8_t> z, std::string_view label,
                   std::span<const uint8_t> party_u, std::span<const uint8_t> party_v,
                   uint32_t bits) {
  if (DigestSize(hash) == 0) return std::unexpected(UnsupportedHash(hash));
  Bytes stream;
  for (uint32_t i = 1; stream.size() * 8 < bits; ++i) {
    Bytes block;
    AppendU32(block, i);
    block.insert(block.end(), z.begin(), z.end());
    block.insert(block.end(), label.begin(), label.end());
    if (label.empty() || label.back() != '\0') block.push_back(0);
    block.insert(block.end(), party_u.begin(), party_u.end());
    block.insert(block.end(), party_v.begin(), party_v.end());
    DEVID_ASSIGN_OR_RETURN(Bytes digest, Hash(hash, block));
    stream.insert(stream.end(), digest.begin(), digest.end());
  }
  Truncate(stream, bits);
  return stream;
}

Result<Bytes> AesCfbEncrypt(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return AesCfb(key, data, true);
}

Result<Bytes> AesCfbDecrypt(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return AesCfb(key, data, false);
}

Result<Bytes> RsaOaepEncrypt(EVP_PKEY* key, Alg hash, std::span<const uint8_t> label,
                             std::span<const uint8_t> data) {
  DEVID_ASSIGN_OR_RETURN(auto ctx, OaepContext(key, hash, label, true));
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("RSA-OAEP encryption"));
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, data.data(), data.size()) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("RSA-OAEP encryption", ErrorCode::kInvalidArgument));
  }
  out.resize(len);
  return out;
}

Result<Bytes> RsaOaepDecrypt(EVP_PKEY* key, Alg hash, std::span<const uint8_t> label,
                             std::span<const uint8_t> ciphertext) {
  DEVID_ASSIGN_OR_RETURN(auto ctx, OaepContext(key, hash, label, false));
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ciphertext.data(), ciphertext.size()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("RSA-OAEP decryption"));
  }
  Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ciphertext.data(), ciphertext.size()) != 1) {
    return std::unexpected(
        ossl::ErrorFromQueue("RSA-OAEP decryption", ErrorCode::kInvalidArgument));
  }
  out.resize(len);
  return out;
}

Bytes Label(std::string_view name) {
  Bytes out(name.begin(), name.end());
  out.push_back(0);
  return out;
}

}  // namespace devid::tpm
