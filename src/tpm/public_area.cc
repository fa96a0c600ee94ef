#include "tpm/public_area.h"

#include <openssl/core_names.h>

#include <string>

#include "ossl/base64.h"
#include "ossl/error.h"

namespace devid::tpm {
namespace {

Error Bad(std::string what) { return InvalidArgument("parsing TPM2B_PUBLIC: " + std::move(what)); }

std::string Hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%04x", v);
  return buf;
}

}  // namespace

Result<Bytes> RsaPublic::Name() const {
  DEVID_ASSIGN_OR_RETURN(Bytes digest, Hash(name_alg, tpmt));
  return Writer().U16(static_cast<uint16_t>(name_alg)).Raw(digest).Take();
}

Alg RsaPublic::OaepHash() const {
  return scheme == Alg::kOaep && scheme_hash != Alg::kNull ? scheme_hash : name_alg;
}

bool RsaPublic::SameKey(const RsaPublic& other) const {
  auto effective = [](uint32_t e) { return e == 0 ? 65537u : e; };
  return modulus == other.modulus && effective(exponent) == effective(other.exponent);
}

Result<ossl::UniquePtr<EVP_PKEY>> RsaPublic::ToEvp() const {
  if (modulus.empty()) return std::unexpected(InvalidArgument("the RSA key has no modulus"));
  ossl::UniquePtr<BIGNUM> n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  ossl::UniquePtr<BIGNUM> e(BN_new());
  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || BN_set_word(e.get(), exponent == 0 ? 65537 : exponent) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building an RSA public key"));
  }
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return std::unexpected(ossl::ErrorFromQueue("building an RSA public key"));
  }
  return ossl::UniquePtr<EVP_PKEY>(key);
}

Result<RsaPublic> ParseRsaTpmtPublic(std::span<const uint8_t> tpmt_public) {
  // TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) with TPMS_RSA_PARMS (§12.2.3.5).
  Reader r(tpmt_public);
  RsaPublic p;
  DEVID_ASSIGN_OR_RETURN(uint16_t type, r.U16("type"));
  if (type != static_cast<uint16_t>(Alg::kRsa)) {
    return std::unexpected(Bad("type " + Hex16(type) + " is not TPM_ALG_RSA"));
  }
  DEVID_ASSIGN_OR_RETURN(uint16_t name_alg, r.U16("nameAlg"));
  p.name_alg = static_cast<Alg>(name_alg);
  if (DigestSize(p.name_alg) == 0) {
    return std::unexpected(Bad("nameAlg " + Hex16(name_alg) + " is not a supported hash"));
  }
  DEVID_ASSIGN_OR_RETURN(p.attributes, r.U32("objectAttributes"));
  DEVID_ASSIGN_OR_RETURN(auto policy, r.B2("authPolicy"));
  p.auth_policy.assign(policy.begin(), policy.end());
  DEVID_ASSIGN_OR_RETURN(uint16_t sym, r.U16("symmetric.algorithm"));
  p.symmetric = static_cast<Alg>(sym);
  if (p.symmetric == Alg::kAes) {
    DEVID_ASSIGN_OR_RETURN(p.symmetric_bits, r.U16("symmetric.keyBits"));
    DEVID_ASSIGN_OR_RETURN(uint16_t mode, r.U16("symmetric.mode"));
    p.symmetric_mode = static_cast<Alg>(mode);
  } else if (p.symmetric != Alg::kNull) {
    return std::unexpected(Bad("symmetric algorithm " + Hex16(sym) + " is not AES or NULL"));
  }
  DEVID_ASSIGN_OR_RETURN(uint16_t scheme, r.U16("scheme.scheme"));
  p.scheme = static_cast<Alg>(scheme);
  // Every RSA scheme but NULL and RSAES carries a hashAlg (Part 2 §11.2.4.2).
  if (p.scheme != Alg::kNull && p.scheme != Alg::kRsaes) {
    DEVID_ASSIGN_OR_RETURN(uint16_t hash, r.U16("scheme.hashAlg"));
    p.scheme_hash = static_cast<Alg>(hash);
  }
  DEVID_ASSIGN_OR_RETURN(p.key_bits, r.U16("keyBits"));
  DEVID_ASSIGN_OR_RETURN(p.exponent, r.U32("exponent"));
  DEVID_ASSIGN_OR_RETURN(auto modulus, r.B2("unique.rsa"));
  p.modulus.assign(modulus.begin(), modulus.end());
  if (!r.done()) {
    return std::unexpected(Bad(std::to_string(r.remaining()) + " bytes after the public area"));
  }
  if (p.key_bits == 0 || p.modulus.size() * 8 != p.key_bits) {
    return std::unexpected(Bad("the modulus is " + std::to_string(p.modulus.size()) +
                               " bytes but keyBits is " + std::to_string(p.key_bits)));
  }
  p.tpmt.assign(tpmt_public.begin(), tpmt_public.end());
  return p;
}

Result<RsaPublic> ParseRsaPublic(std::span<const uint8_t> tpm2b_public) {
  Reader r(tpm2b_public);
  DEVID_ASSIGN_OR_RETURN(auto tpmt, r.B2("TPM2B_PUBLIC size"));
  if (!r.done()) {
    return std::unexpected(Bad("the size field says " + std::to_string(tpmt.size()) +
                               " bytes but " + std::to_string(tpm2b_public.size() - 2) +
                               " follow"));
  }
  return ParseRsaTpmtPublic(tpmt);
}

Result<RsaPublic> ParseRsaPublicBase64(std::string_view base64) {
  auto bytes = ossl::Base64Decode(base64);
  if (!bytes) return std::unexpected(Bad("it is not base64"));
  return ParseRsaPublic(*bytes);
}

Bytes MarshalRsaPublic(const RsaPublic& p) {
  Writer w;
  w.U16(static_cast<uint16_t>(Alg::kRsa))
      .U16(static_cast<uint16_t>(p.name_alg))
      .U32(p.attributes)
      .B2(p.auth_policy)
      .U16(static_cast<uint16_t>(p.symmetric));
  if (p.symmetric != Alg::kNull) {
    w.U16(p.symmetric_bits).U16(static_cast<uint16_t>(p.symmetric_mode));
  }
  w.U16(static_cast<uint16_t>(p.scheme));
  if (p.scheme != Alg::kNull && p.scheme != Alg::kRsaes) {
    w.U16(static_cast<uint16_t>(p.scheme_hash));
  }
  w.U16(p.key_bits).U32(p.exponent).B2(p.modulus);
  return w.Take();
}

std::string RegistrationIdFromEk(std::span<const uint8_t> ek_tpm2b_public) {
  // RFC 4648 §6 alphabet, lowercased, no padding.
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  Bytes digest = *Hash(Alg::kSha256, ek_tpm2b_public);
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : digest) {
    buffer = buffer << 8 | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

}  // namespace devid::tpm
